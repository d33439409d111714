"""The benchmark's floor: a scoring script that does nothing but read the body.

What the inference server itself costs per request and at start-up; no script can be faster
than this under the same server and settings. Never deployed.
"""

from azureml_inference_server_http.api.aml_request import rawhttp


def init():
    pass


@rawhttp
def run(request):
    request.get_data()
    return {"result": [0.0]}
