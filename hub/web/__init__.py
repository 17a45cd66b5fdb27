"""Server-rendered pages: the partner portal (/portal) and the operator admin (/admin).

Starlette + Jinja2, one stylesheet and a few lines of vanilla JS, charts as inline SVG. See
`security` for sessions and CSRF, `pages` for the request cycle every page shares, `routes` for
the list the app mounts.
"""
