"""Simulator errors: Graph API refusals rendered as Meta's error bodies (`GraphError` and the
constructors for each refusal Meta gives), and bad control-API requests (`SimError`)."""

from __future__ import annotations

from typing import Any


class SimulatorError(Exception):
    """Base of the simulator's errors."""


class GraphError(SimulatorError):
    """A Graph API refusal, rendered as Meta's error body."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        error_type: str = "OAuthException",
        http_status: int = 400,
        is_transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subcode = subcode
        self.error_type = error_type
        self.http_status = http_status
        self.is_transient = is_transient

    def body(self, fbtrace_id: str) -> dict[str, Any]:
        err: dict[str, Any] = {"message": self.message, "type": self.error_type}
        if self.is_transient:
            err["is_transient"] = True
        err["code"] = self.code
        if self.subcode is not None:
            err["error_subcode"] = self.subcode
        err["fbtrace_id"] = fbtrace_id
        return {"error": err}


class SimError(SimulatorError):
    """A bad request to the control API (unknown mid, closed window for the Inbox, ...)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def invalid_token() -> GraphError:
    return GraphError(190, "Invalid OAuth access token.")


def transient_error() -> GraphError:
    return GraphError(
        2,
        "An unexpected error has occurred. Please retry your request later.",
        http_status=500,
        is_transient=True,
    )


def rate_limited() -> GraphError:
    return GraphError(613, "(#613) Calls to this api have exceeded the rate limit.")


def not_owner() -> GraphError:
    return GraphError(100, "(#100) This person is not the owner of the thread", subcode=2534037)


def outside_window() -> GraphError:
    return GraphError(10, "(#10) This message is sent outside of allowed window.", subcode=2534022)


def no_matching_user() -> GraphError:
    return GraphError(100, "(#100) No matching user found", subcode=2018001)


def param_error(text: str) -> GraphError:
    return GraphError(100, f"(#100) {text}")


def private_reply_used() -> GraphError:
    return GraphError(
        10, "(#10) This comment has already been replied to privately.", subcode=2534025
    )


def take_unsupported() -> GraphError:
    return GraphError(
        27,
        "(#27) Take thread control is not supported when Conversation Routing is not enabled",
        subcode=2534123,
    )


def take_not_allowed() -> GraphError:
    return GraphError(
        10,
        "(#10) This app is not allowed to take control of conversations. Allow it in Page"
        " Settings > Advanced Messaging.",
    )


def unsupported_request(method: str, node: str) -> GraphError:
    return GraphError(
        100,
        f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, cannot be"
        " loaded due to missing permissions, or does not support this operation. Please read the"
        " Graph API documentation at https://developers.facebook.com/docs/graph-api",
        subcode=33,
        error_type="GraphMethodException",
    )
