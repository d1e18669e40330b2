"""The desk's pages as operations of the OpenAPI document (streams/http/openapi.py): HTML
answers, tagged `desk`. A page needs a signed-in person (the session cookie, or a bearer
token); without one it redirects to the sign-in page. Forms must come from a page of the
desk (the same-origin check, guard.py): from anywhere else they are refused with 403."""

from __future__ import annotations

from cartwatch.alerts.sinks.links import DESK_PATH
from cartwatch.streams.http.desk.guard import SIGN_IN_PATH
from cartwatch.streams.http.desk.inbox import NOTE_MAX
from cartwatch.streams.http.desk.sign_in import TOKEN_MAX
from cartwatch.streams.http.operation import HTML, Operation, Parameter, Response

SIGNED_IN = ("sessionCookie", "bearerAuth")
PAGE = Response("The page", HTML)
TO_SIGN_IN = Response("Nobody signed in: to the sign-in page", None, {"Location": SIGN_IN_PATH})
NO_ROLE = Response("The signed-in person holds no role that may see this", HTML)
OTHER_SITE = Response("The form was not sent from a page of this desk", HTML)
TRIAL = Parameter("trial_id", "path", "a trial id")


def _page(path: str, operation_id: str, summary: str, *extra: Parameter) -> Operation:
    """A page a viewer reads: 200, or to the sign-in page, or 403, or 404."""
    responses = {
        200: PAGE,
        303: TO_SIGN_IN,
        403: NO_ROLE,
        404: Response("No such trial or patient", HTML),
    }
    return Operation(
        "GET", path, operation_id, summary, "desk", responses, "viewer", extra, security=SIGNED_IN
    )


DESK_OPERATIONS = (
    _page(DESK_PATH, "deskInbox", "The alert inbox: open alerts first, then acknowledged"),
    Operation(
        "GET",
        f"{DESK_PATH}/inbox",
        "deskInboxFragment",
        "The inbox's tables alone, for the page's live refresh",
        "desk",
        {200: PAGE, 401: Response("Signed out", "text/plain"), 403: NO_ROLE},
        security=SIGNED_IN,
    ),
    _page(f"{DESK_PATH}/trials/{{trial_id}}", "deskTrial", "A trial's figures and charts", TRIAL),
    _page(
        f"{DESK_PATH}/trials/{{trial_id}}/patients/{{patient_id}}",
        "deskPatient",
        "A patient's course and alerts",
        TRIAL,
        Parameter("patient_id", "path", "a patient id"),
    ),
    Operation(
        "POST",
        f"{DESK_PATH}/alerts/{{alert_id}}/ack",
        "deskAcknowledge",
        "Acknowledge an alert with the form's note; back to the page it came from",
        "desk",
        {
            303: Response("Acknowledged: back to `back` (a desk path) or the inbox", None),
            400: Response(
                f"The note is over {NOTE_MAX} characters or holds a NUL, or the form could "
                "not be read",
                HTML,
            ),
            403: Response("Not a physician, or the form came from another site", HTML),
            404: Response("No such alert", HTML),
            409: Response("Acknowledged before", HTML),
            503: Response("No database to record acknowledgements in", HTML),
        },
        "physician",
        (Parameter("alert_id", "path", "the alert's id"),),
        form={
            "type": "object",
            "properties": {
                "note": {"type": "string", "maxLength": NOTE_MAX},
                "back": {"type": "string", "description": "the desk page to return to"},
            },
        },
        security=SIGNED_IN,
    ),
    Operation("GET", SIGN_IN_PATH, "deskSignInForm", "The sign-in form", "desk", {200: PAGE}, None),
    Operation(
        "POST",
        SIGN_IN_PATH,
        "deskSignIn",
        "Sign in with a personal access token: sets the session cookie",
        "desk",
        {
            303: Response("Signed in: to the page asked for before, or the inbox", None),
            400: Response("The form could not be read", HTML),
            401: Response("The token was not recognised", HTML),
            403: OTHER_SITE,
            503: Response("Sign-in is not configured, or accounts cannot be checked", HTML),
        },
        None,
        form={
            "type": "object",
            "properties": {"token": {"type": "string", "maxLength": TOKEN_MAX}},
            "required": ["token"],
        },
    ),
    Operation(
        "POST",
        f"{DESK_PATH}/sign-out",
        "deskSignOut",
        "Sign out: clears the session cookie",
        "desk",
        {303: Response("To the sign-in page", None), 403: OTHER_SITE},
        None,
    ),
)
