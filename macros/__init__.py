"""mkdocs-macros entry point; the release loading and the macros live in betrace_dist.site."""

from betrace_dist.site.macros import install


def define_env(env):
    install(env)
