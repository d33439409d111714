"""Baseline for the scoring benchmark: a reference-style Azure ML scoring script.

This is how the usual Azure ML MLOps samples serve the diabetes model (Microsoft's MLOpsPython
`diabetes_regression/scoring/score.py`): inference-schema decorators, joblib + scikit-learn, one
log line per request with its id, no validation, no authentication. Only the model lookup
differs: `os.path.join` instead of the retired v1 SDK's `Model.get_model_path`. It runs under
the same inference server and settings as scoring/score.py, so the benchmark compares the
scripts. It is never deployed.
"""

import os

import joblib
import numpy
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    global model
    model_path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl")
    model = joblib.load(model_path)


input_sample = numpy.array(
    [[0.038, 0.050, 0.061, 0.021, -0.044, -0.034, -0.043, -0.002, 0.019, -0.017]]
)
output_sample = numpy.array([206.1])


@input_schema("data", NumpyParameterType(input_sample))
@output_schema(NumpyParameterType(output_sample))
def run(data, request_headers):
    result = model.predict(data)
    # The reference's request log line; the server turns print() into a log record.
    print(
        '{{"RequestId":"{}", "TraceParent":"{}", "NumberOfPredictions":{}}}'.format(
            request_headers.get("X-Ms-Request-Id", ""),
            request_headers.get("Traceparent", ""),
            len(result),
        )
    )
    return {"result": result.tolist()}
