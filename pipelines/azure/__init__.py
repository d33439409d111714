"""The Azure target: azure-ai-ml v2 entities, built from the infrastructure's stack outputs.

Modules:

- `outputs`: which stack a command runs against, read from `pulumi stack output` files.
- `client`: the credential and `MLClient` factories (workspace and shared registry).
- `invariants`: the rules Azure does not check client-side (traffic, mirroring, names, scale).
- `entities`: pure builders, settings and outputs in, azure-ai-ml entities out.
- `training`: the Azure ML training pipeline (command components wired with `@dsl.pipeline`).
- `entrypoints`: `python -m pipelines.azure.entrypoints ...`, what the components run.
- `snapshot`: the modules a step's code snapshot must hold, and the check that they import.
- `local_run`: `mlops pipeline run --local`, each node from its snapshot in its environment.
- `registry`: the shared Azure ML registry behind the project's `ModelRegistry` interface.
- `image`: the scoring image's build context and its ACR build.
- `qa_service`: the QA scoring service on Azure Container Instances.
- `batch`: the batch deployment and batch-scoring jobs.
- `commands`: the Azure side of `mlops endpoints list`, `batch-score` and the pipeline commands.

Nothing here imports azure-ai-ml at module level except `entities`, `training` and `batch`, so
`mlops --help` stays fast.
"""

import logging

# The SDKs log notices meant for notebooks as warnings: experimental classes (at import),
# anonymous asset names, every credential DefaultAzureCredential tried. Our messages say what
# matters. Child loggers, because azure.ai.ml resets its own top logger when imported.
for _name in ("azure.ai.ml._utils._experimental", "azure.ai.ml._schema", "azure.identity"):
    logging.getLogger(_name).setLevel(logging.ERROR)
