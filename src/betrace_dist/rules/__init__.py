"""BeTrace rules as code: the project's rules file, the backend's rules.json made from it, and
`betrace-dist rules check`, which compiles each rule on the real backend before it is deployed.
"""
