"""The Azure ML platform as code.

What `pulumi up` runs: `infra/__main__.py` → `infra.program` (the components in
`infra.components`, the stack's `infra.settings`, the `infra.outputs` contract, `infra.naming`)
and the CrossGuard pack `infra.policy_pack` over `infra.policies`; the Azure DevOps project in
`infra.devops`. The offline tooling (recording under mocks, ARM export, checks, plan, sizing,
prerequisites, purge) lives in `infra.tooling`, which the program never imports.
"""
