"""Stable error codes with shopper-facing messages in English and Simplified Chinese.

Importable without Django settings (the sandbox and the engine use the same catalogue later).
Codes are the provider's own where one exists; ours otherwise.
"""

from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    # Provider codes (DashScope's OutfitAnyone API and error-code pages; see docs/backends/dashscope.rst).
    "InvalidInputLength": (
        "The image must be 5 KB to 5 MB, and each side more than 150 and at most 4096 pixels.",
        "图片大小须在 5KB 到 5MB 之间，且每条边须大于 150 像素、不超过 4096 像素。",
    ),
    "InvalidURL": (
        "The image could not be read. Upload a JPEG, PNG, BMP or WebP photo.",
        "无法读取该图片。请上传 JPEG、PNG、BMP 或 WebP 格式的照片。",
    ),
    "InvalidGarment": (
        "Choose at least one garment: a top (or a dress) or a bottom.",
        "请至少选择一件服装：上装（或连衣裙）或下装。",
    ),
    "InvalidPerson": (
        "The photo must show exactly one person, full body, facing the camera.",
        "照片中须有且仅有一个人，全身、正面面向镜头。",
    ),
    "InvalidParameter": (
        "A parameter of the request is missing or invalid.",
        "请求参数缺失或无效。",
    ),
    "DataInspectionFailed": (
        "The image was refused by the provider's content inspection.",
        "图片未通过服务方的内容安全审核。",
    ),
    "InvalidApiKey": (
        "The try-on service refused the API key. The shop must check its DashScope key.",
        "试衣服务拒绝了 API Key，请商家检查 DashScope 密钥配置。",
    ),
    "AccessDenied": (
        "The try-on service denied access to this model.",
        "试衣服务拒绝访问该模型。",
    ),
    "Arrearage": (
        "The shop's try-on account is not in good standing.",
        "商家的试衣服务账户欠费或状态异常。",
    ),
    "CommodityNotPurchased": (
        "The shop has not activated this try-on model.",
        "商家尚未开通该试衣模型。",
    ),
    "PrepaidBillOverdue": (
        "The shop's try-on account is not in good standing.",
        "商家的试衣服务账户欠费或状态异常。",
    ),
    "PostpaidBillOverdue": (
        "The shop's try-on account is not in good standing.",
        "商家的试衣服务账户欠费或状态异常。",
    ),
    "OutOfCredits": (  # FASHN
        "The shop's try-on account has no credits left.",
        "商家的试衣服务账户额度已用完。",
    ),
    "Throttling": (  # a job fails with it only once its retries are used up
        "The try-on service is busy. Please try again in a few minutes.",
        "试衣服务繁忙，请几分钟后重试。",
    ),
    "ModelServingError": (
        "The try-on service is busy. Please try again in a few minutes.",
        "试衣服务繁忙，请几分钟后重试。",
    ),
    "InternalError": (
        "The try-on service had an internal error. Please try again.",
        "试衣服务内部错误，请重试。",
    ),
    "SystemError": (
        "The try-on service had an internal error. Please try again.",
        "试衣服务内部错误，请重试。",
    ),
    "RequestTimeOut": (
        "The try-on service did not answer in time. Please try again.",
        "试衣服务响应超时，请重试。",
    ),
    "GatewayTimeout": (
        "The try-on service did not answer in time. Please try again.",
        "试衣服务响应超时，请重试。",
    ),
    "ModelUnavailable": (
        "The try-on model is temporarily unavailable. Please try again later.",
        "试衣模型暂时不可用，请稍后重试。",
    ),
    "ServiceUnavailable": (
        "The try-on service is temporarily unavailable. Please try again later.",
        "试衣服务暂时不可用，请稍后重试。",
    ),
    "BadRequest": (  # BadRequest.EmptyInput and the like: a request the provider could not read
        "The try-on service refused the request.",
        "试衣服务拒绝了该请求。",
    ),
    "UnsupportedOperation": (
        "The try-on has already started and can no longer be canceled.",
        "试衣已开始生成，无法取消。",
    ),
    # Our codes.
    "ConfigurationError": (
        "The shop's try-on service is not configured correctly.",
        "商家的试衣服务配置有误。",
    ),
    "ModelNotAvailable": (
        (
            "The try-on model is no longer available from the provider (it may have been retired). "
            "The shop must configure another model."
        ),
        "服务方已不再提供该试衣模型（可能已下线），请商家配置其他模型。",
    ),
    "ProviderUnavailable": (
        "The try-on service could not be reached. Please try again later.",
        "暂时无法连接试衣服务，请稍后重试。",
    ),
    "ProviderRejected": (
        "The try-on service refused the request.",
        "试衣服务拒绝了该请求。",
    ),
    "ProviderError": (
        "The try-on service returned an error.",
        "试衣服务返回了错误。",
    ),
    "ResultUnavailable": (
        "The generated picture could not be downloaded from the try-on service.",
        "无法从试衣服务下载生成的图片。",
    ),
    "Timeout": (
        "The try-on took too long and was stopped. Please try again.",
        "试衣生成超时，已停止，请重试。",
    ),
    "Canceled": ("The try-on was canceled.", "试衣已取消。"),
    "ProcessingError": (
        "Something went wrong on our side while processing the try-on. Please try again.",
        "处理试衣时我方出现错误，请重试。",
    ),
    "Unknown": (
        "The try-on service lost track of this job (unknown or expired task).",
        "试衣服务找不到该任务（任务不存在或已过期）。",
    ),
    "TryOnError": ("The try-on failed.", "试衣失败。"),
    "quota_exceeded": (
        "You have reached today's try-on limit. Please come back tomorrow.",
        "今日试穿次数已用完，请明天再来。",
    ),
    "queue_full": (
        "Too many try-ons are waiting right now. Please try again in a minute.",
        "当前排队的试穿过多，请一分钟后再试。",
    ),
    "rate_limited": (
        "Too many requests from your network. Please wait a moment and try again.",
        "您所在网络的请求过多，请稍候再试。",
    ),
    "budget_exceeded": (
        "Try-on is paused for today. Please come back tomorrow.",
        "今日试穿服务已暂停，请明天再来。",
    ),
    "consent_required": (
        "Please agree to the processing of your photo before uploading it.",
        "上传照片前，请先同意我们处理您的照片。",
    ),
    "not_found": ("Not found.", "未找到。"),
    "authentication_required": ("Please sign in to use try-on.", "请登录后使用试穿功能。"),
    "permission_denied": ("You cannot do that.", "您无权执行此操作。"),
    "method_not_allowed": ("This action is not allowed here.", "此处不允许该操作。"),
    "not_cancelable": (
        "The try-on has already started and can no longer be canceled.",
        "试衣已开始生成，无法取消。",
    ),
    "already_finished": ("This try-on is already finished.", "该试衣已结束。"),
    "not_retryable": ("Only failed or canceled try-ons can be retried.", "只有失败或已取消的试衣可以重试。"),
    "invalid_webhook": (
        "No active webhook endpoint of yours has this name.",
        "您的账户下没有该名称的有效 Webhook 端点。",
    ),
    "unsafe_url": (
        "This address may not be called: use a public https:// URL.",
        "不能调用该地址：请使用公网上的 https:// 地址。",
    ),
    # Sharing a result (issue 15)
    "not_shareable": (
        "Only a finished try-on whose picture is still kept can be shared.",
        "只有已完成且图片仍保留的试衣才能分享。",
    ),
    "service_unavailable": (
        "Try-on is not available right now. Please try again later.",
        "试穿服务暂时不可用，请稍后再试。",
    ),
}


#: The catalogue's languages, in the order of each entry's texts.
LANGUAGES = ("en", "zh-hans")


def catalogue_language(language: str | None) -> str:
    """The catalogue's language for a language code: "zh-hans" for any Chinese one ("zh", "zh-cn"), else "en"."""
    return LANGUAGES[1] if (language or "en").lower().startswith("zh") else LANGUAGES[0]


def active_language() -> str:
    """The catalogue's language for Django's active language (the request's, under ``LocaleMiddleware``)."""
    from django.utils import translation

    return catalogue_language(translation.get_language())


def message_for(code: str, language: str = "en", default: str = "") -> str:
    """The message for ``code`` in ``language`` ("en" or "zh-hans"; "zh*" means Simplified Chinese).

    Dotted provider codes fall back to their family (``Throttling.RateQuota`` → ``Throttling``).
    """
    index = LANGUAGES.index(catalogue_language(language))
    entry = MESSAGES.get(code) or MESSAGES.get(code.split(".")[0])
    if entry is None:
        return default or MESSAGES["TryOnError"][index]
    return entry[index]


def catalogue(language: str) -> dict[str, str]:
    """Every code's message in ``language``: the table the widget shows (rendered into the page)."""
    index = LANGUAGES.index(catalogue_language(language))
    return {code: texts[index] for code, texts in MESSAGES.items()}
