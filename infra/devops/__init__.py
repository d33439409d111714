"""The Azure DevOps side of the template as code (pulumi-azuredevops): environments with their
checks, the workload identity federation service connection, the Key Vault-linked variable
group and the four pipeline definitions. Its own Pulumi project (`infra/devops/Pulumi.yaml`)
with one stack, `devops`; `build(settings)` in `infra.devops.program` creates everything.
"""
