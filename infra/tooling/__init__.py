"""Offline tooling around the Pulumi programs; `pulumi up` never runs any of it.

- `recording`, `devops_recording`: run a program under Pulumi's unit-test mocks and keep
  the graph the engine would have received (the tests, plan and checks read it).
- `arm`: that graph as an ARM template, for checkov.
- `checks`: checkov plus the policies over the recorded graph (`mlops infra check`).
- `plan`: what a stack would create (`mlops infra plan`).
- `sizing`: replicas and nodes for a peak load (`mlops infra size`).
- `prereqs`, `purge`: resource providers to register, teardown of soft-deleted resources
  (`mlops infra prereqs`, `mlops infra purge`).

The program side (`infra.program`, `infra.components`, `infra.settings`, `infra.outputs`,
`infra.naming`, `infra.policies`, `infra.devops`, `infra.policy_pack`) never imports this
package: the import-linter contract `program-without-tooling` in pyproject.toml checks it.
"""
