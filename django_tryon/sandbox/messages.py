"""The provider's error codes and messages, verbatim from DashScope's error-code and OutfitAnyone API pages
(listed in docs/backends/dashscope.rst, "The provider's documentation")."""

ERRORS: dict[str, tuple[int, str]] = {
    "NoApiKey": (401, "No API-key provided."),
    "InvalidApiKey": (401, "Invalid API-key provided."),
    "SyncNotSupported": (403, "current user api does not support synchronous calls."),
    "AsyncNotSupported": (403, "Current user api does not support asynchronous calls."),
    "BodyInvalid": (400, "Required body invalid, please check the request body format."),
    "BadRequest.EmptyModel": (400, 'Required parameter "model" missing from request.'),
    "BadRequest.EmptyInput": (400, "Required input parameter missing from request."),
    "ModelNotExist": (400, "Model not exist."),
    "InvalidParameter": (
        400,
        "The request is missing required parameters or in a wrong format, please check the parameters that you send.",
    ),
    "InvalidURL": (
        400,
        (
            "The request URL is invalid, please check the request URL is available and the request image format is "
            "one of the following types: JPEG, JPG, PNG, BMP, and WEBP."
        ),
    ),
    "InvalidPerson": (
        400,
        "The input image has no human body or multi human bodies. Please upload other image with single person.",
    ),
    "InvalidGarment": (
        400,
        "Missing clothing image.Please input at least one top garment or bottom garment image.",
    ),
    "InvalidInputLength": (
        400,
        (
            "The image resolution is invalid, please make sure that the largest length of image is smaller than "
            "4096, and the smallest length of image is larger than 150. and the size of image ranges from 5KB to 5MB."
        ),
    ),
    "InvalidParameter.ClothesType": (
        400,
        "The request parameter is invalid, please check the request parameter.",
    ),
    "SizeMismatch": (400, "The size of person image and coarse_image are not the same."),
    "DataInspectionFailed": (400, "Input or output data may contain inappropriate content."),
    "Arrearage": (400, "Access denied, please make sure your account is in good standing."),
    "UnsupportedOperation": (
        400,
        "Failed to cancel the task, please confirm if the task is in PENDING status.",
    ),
    "Endpoint.AccessDenied": (403, "Workspace endpoint access denied."),
    "Throttling": (429, "Requests throttling triggered."),
    "Throttling.RateQuota": (429, "Requests rate limit exceeded, please try again later."),
    "Throttling.AllocationQuota": (429, "Allocated quota exceeded, please increase your quota limit."),
    "InternalError": (
        500,
        "An internal error has occured, please try again later or contact service support.",
    ),
    "InternalError.Algo": (500, "An internal error has occured during algorithm execution."),
    "InternalError.Timeout": (
        500,
        "An internal timeout error has occured during execution, please try again later or contact service support.",
    ),
    "InternalError.Upload": (500, "Failed to upload result."),
    "InternalError.FileUpload": (500, "oss upload error."),
    "SystemError": (500, "An system error has occured, please try again later."),
    "RequestTimeOut": (500, "Request timed out, please try again later."),
    "ServiceUnavailable": (503, "Service is unavailable, please try again later."),
    "ModelServingError": (
        503,
        "Too many requests. Your requests are being throttled due to system capacity limits. Please try again later.",
    ),
    "ModelUnavailable": (503, "Model is unavailable, please try again later."),
    "AccessDenied.Expired": (403, "Invalid according to Policy: Policy expired."),
}

#: Codes whose wire ``code`` differs from the key above.
WIRE_CODE = {
    "NoApiKey": "InvalidApiKey",
    "SyncNotSupported": "AccessDenied",
    "AsyncNotSupported": "AccessDenied",
    "BodyInvalid": "InvalidParameter",
    "ModelNotExist": "InvalidParameter",
    "SizeMismatch": "InvalidParameter",
    "AccessDenied.Expired": "AccessDenied",
}


def error(key: str) -> tuple[int, str, str]:
    """(HTTP status, wire code, message) for an error key."""
    status, message = ERRORS[key]
    return status, WIRE_CODE.get(key, key), message
