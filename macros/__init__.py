"""mkdocs-macros entry point; the release loading and the macros live in betrace_dist.site.

Pages render in a sandbox (betrace_dist.site.sandbox): `define_env` records the names the release
data and the macros give pages, and `on_pre_page_macros`, which mkdocs-macros calls before it
renders each page, installs the sandbox and removes every other name.
"""

from betrace_dist.site import sandbox
from betrace_dist.site.macros import install


def define_env(env):
    sandbox.install(env, install)


def on_pre_page_macros(env):
    sandbox.enforce(env)
