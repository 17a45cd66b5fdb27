"""GET /download/{product}?code=...: the operator's module archive with the partner code in it."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from hub.api.http import hub_of
from hub.attribution.customers import can_attribute, partner_by_code
from hub.attribution.downloads import iter_file, stamped_copy
from hub.attribution.partners import CODE_RE
from hub.errors import NotFound


async def download(request: Request) -> StreamingResponse:
    """The archive with the code stamped in (`[downloads.<product>] stamp_path`).

    No code: the plain archive (the installer then asks for one). A code that is malformed,
    unknown or belongs to a partner who cannot be credited: 404, so a typo is noticed before
    the module is installed rather than silently losing the attribution."""
    hub = hub_of(request)
    product = request.path_params["product"]
    conf = hub.config.downloads.get(product)
    if conf is None:
        raise NotFound(f"no download for {product!r}", code="unknown_product")
    code = (request.query_params.get("code") or "").strip() or None
    if code is not None:
        program = conf.program or (product if product in hub.programs else "")
        await run_in_threadpool(_check_code, request, code, program)
    handle = await run_in_threadpool(stamped_copy, conf, code)
    name = f"{product}-{code}.zip" if code else f"{product}.zip"
    return StreamingResponse(iter_file(handle), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})


def _check_code(request: Request, code: str, program: str) -> None:
    """A code the download may stamp: well formed, a partner who can be credited, and in the
    download's program (another program's code would attribute the install to the wrong one)."""
    hub = hub_of(request)
    if not CODE_RE.match(code):
        raise NotFound("unknown partner code", code="unknown_code")
    with hub.sessions() as session:
        partner = partner_by_code(session, code)
        if (partner is None or not can_attribute(hub, partner)
                or (program and partner.program != program)):
            raise NotFound("unknown partner code", code="unknown_code")


ROUTES = [Route("/download/{product}", download, methods=["GET"])]
