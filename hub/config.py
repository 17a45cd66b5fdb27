"""Configuration: a TOML file (``--config`` or ``HUB_CONFIG``), secrets overridable by env vars,
embedded defaults when there is no file at all (SQLite ``./hub.db``, in-process queue, PayPal
dry-run). Program tables are validated later, against the settings their plugin declares."""

from __future__ import annotations

import os
import tomllib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any, Literal

from limits import parse as parse_limit

from hub.errors import StartupError
from hub.settings import parse_table


class Secret(str):
    """A string that never shows itself in a repr, a log line or a traceback's locals."""

    def __repr__(self) -> str:
        return "Secret('***')"

    @property
    def value(self) -> str:
        return str.__str__(self)


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:///./hub.db"
    pool_size: int = 10


@dataclass(frozen=True)
class QueueConfig:
    url: str = ""  # empty: actors run in-process
    namespace: str = "hub"  # Redis key prefix, so several hubs can share one Redis
    max_retries: int = 8
    min_backoff_ms: int = 15_000
    max_backoff_ms: int = 3_600_000
    stale_seconds: int = 600  # `hub tick` re-sends a payout or delivery untouched this long

    def __post_init__(self) -> None:
        if (self.max_retries < 0 or self.min_backoff_ms <= 0
                or self.max_backoff_ms < self.min_backoff_ms):
            raise ValueError("retries cannot be negative and backoffs must be 0 < min <= max")


MIN_SECRET_KEY = 32  # characters of `[server] secret_key`


@dataclass(frozen=True)
class ServerConfig:
    admin_token: str = ""
    installer_token: str = ""  # required by POST /api/v1/installs and /api/v1/signups
    signups_token: str = ""  # optional second token accepted by POST /api/v1/signups only
    metrics_token: str = ""  # when set, GET /metrics needs it as a bearer token
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    allowed_domains: tuple[str, ...] = ()
    default_landing: str = ""
    max_body_bytes: int = 1_048_576
    materials_dir: str = "./materials"  # where operator-uploaded partner materials are kept
    # Failed log-ins allowed (portal and admin each) per account and per client address before
    # 429; `limits` notation ("10 per 15 minutes"). See hub/web/throttle.py.
    login_limit_account: str = "10 per 15 minutes"
    login_limit_address: str = "50 per 15 minutes"

    def __post_init__(self) -> None:
        for name in ("login_limit_account", "login_limit_address"):
            try:
                amount = parse_limit(getattr(self, name)).amount
            except ValueError:
                amount = 0
            if amount < 1:
                raise ValueError(f"{name} must read like \"10 per 15 minutes\" (at least 1)")
        # A short key lets anyone who guesses it forge portal and admin sessions. Empty stays
        # allowed: each process then makes a random key of its own (hub.web.security).
        if self.secret_key and len(self.secret_key) < MIN_SECRET_KEY:
            raise ValueError(f"secret_key is too short: use at least {MIN_SECRET_KEY} random "
                             "characters (e.g. `python -c 'import secrets; "
                             "print(secrets.token_urlsafe(32))'`), or leave it empty")


@dataclass(frozen=True)
class LinksConfig:
    """What the link builder puts in the HTML embed code, and the redirect's query names."""

    link_text: str = "Try it free"
    ready_text: str = "I use it every day and recommend it. Try it free:"
    banner_url: str = ""  # image creatives need their image URL; unset -> 422 for that creative
    logo_url: str = ""
    screenshot_url: str = ""
    cookie_name: str = "hub_ref"
    cookie_domain: str = ""  # e.g. ".example.com" so the product's pages can read it
    # The tracking script (GET /track.js): the query names that carry a referral code on the
    # merchant's pages, and its first-party cookie there.
    track_params: tuple[str, ...] = ("via", "ref")
    track_cookie: str = "hub_referral"

    def __post_init__(self) -> None:
        if not self.track_params or not all(
                isinstance(p, str) and p.strip() and p.isascii() for p in self.track_params):
            raise ValueError("track_params must list at least one query parameter name")
        if not self.track_cookie.replace("_", "").replace("-", "").isalnum():
            raise ValueError("track_cookie must be a plain cookie name (letters, digits, _ and -)")


@dataclass(frozen=True)
class DownloadConfig:
    """`[downloads.<product>]`: the module archive served by GET /download/<product>?code=..."""

    archive: str
    stamp_path: str = "partner_code.txt"
    # the program whose partner codes this download takes; empty: the program named like the
    # product, when there is one (another program's code is then a 404)
    program: str = ""


@dataclass(frozen=True)
class StripeConfig:
    api_key: str = ""
    webhook_secret: str = ""
    tolerance_seconds: int = 300


@dataclass(frozen=True)
class PaypalConfig:
    mode: Literal["sandbox", "live", "dry-run"] = "dry-run"
    client_id: str = ""
    client_secret: str = ""
    webhook_id: str = ""
    api_base: str = ""  # empty: PayPal's own endpoint for the mode
    timeout_seconds: int = 20
    email_subject: str = "You have a payout"


@dataclass(frozen=True)
class EmailConfig:
    """`[email]`: where mail goes. `url` is ``smtp://user:pass@host:port`` (``smtps://`` for
    implicit TLS, ``?starttls=true`` to upgrade); without it mail is written as ``.eml`` files
    under `dir`. In TOML the sender is the key ``from``."""

    url: str = ""
    sender: str = "Partners <partners@localhost>"
    dir: str = "./mail"
    operator: str = ""  # who gets the operators' mails (applications, withdrawals, dead letters)
    timeout_seconds: int = 20

    def __post_init__(self) -> None:
        # Checked at start-up, and said without the URL: it holds the SMTP password.
        if self.url and not str.__str__(self.url).startswith(("smtp://", "smtps://")):
            raise ValueError("url must be smtp://user:pass@host:port or smtps://...")


@dataclass(frozen=True)
class ConnectorsConfig:
    stripe: StripeConfig = field(default_factory=StripeConfig)
    paypal: PaypalConfig = field(default_factory=PaypalConfig)


@dataclass(frozen=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    connectors: ConnectorsConfig = field(default_factory=ConnectorsConfig)
    links: LinksConfig = field(default_factory=LinksConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    programs: dict[str, dict[str, Any]] = field(default_factory=dict)
    downloads: dict[str, DownloadConfig] = field(default_factory=dict)


# env var -> (table path, key); these win over the file so secrets can stay out of it.
ENV_OVERRIDES: dict[str, tuple[tuple[str, ...], str]] = {
    "HUB_DATABASE_URL": (("database",), "url"),
    "HUB_QUEUE_URL": (("queue",), "url"),
    "HUB_ADMIN_TOKEN": (("server",), "admin_token"),
    "HUB_INSTALLER_TOKEN": (("server",), "installer_token"),
    "HUB_SIGNUPS_TOKEN": (("server",), "signups_token"),
    "HUB_METRICS_TOKEN": (("server",), "metrics_token"),
    "HUB_SECRET_KEY": (("server",), "secret_key"),
    "HUB_BASE_URL": (("server",), "base_url"),
    "HUB_STRIPE_API_KEY": (("connectors", "stripe"), "api_key"),
    "HUB_STRIPE_WEBHOOK_SECRET": (("connectors", "stripe"), "webhook_secret"),
    "HUB_PAYPAL_MODE": (("connectors", "paypal"), "mode"),
    "HUB_PAYPAL_CLIENT_ID": (("connectors", "paypal"), "client_id"),
    "HUB_PAYPAL_CLIENT_SECRET": (("connectors", "paypal"), "client_secret"),
    "HUB_PAYPAL_WEBHOOK_ID": (("connectors", "paypal"), "webhook_id"),
    "HUB_PAYPAL_API_BASE": (("connectors", "paypal"), "api_base"),
    "HUB_EMAIL_URL": (("email",), "url"),
}
SECRET_KEYS = {"admin_token", "installer_token", "signups_token", "secret_key", "api_key",
               "webhook_secret", "client_secret", "metrics_token"}


def load_config(path: str | None = None, env: Mapping[str, str] | None = None, *,
                default_base_url: str | None = None) -> Config:
    """Read the config file (if any), apply env overrides, validate the hub's own tables.
    `default_base_url` stands in for `[server] base_url` when neither sets it (`hub serve`
    passes the address it listens on)."""
    env = os.environ if env is None else env
    path = path or env.get("HUB_CONFIG") or None
    raw = _read_toml(path) if path else {}
    for var, (tables, key) in ENV_OVERRIDES.items():
        if env.get(var):
            target = raw
            for name in tables:
                target = target.setdefault(name, {})
            target[key] = env[var]
    server = raw.get("server")
    if default_base_url and not (isinstance(server, dict) and server.get("base_url")):
        raw.setdefault("server", {})
        if isinstance(raw["server"], dict):
            raw["server"]["base_url"] = default_base_url
    return config_from_dict(raw)


def config_from_dict(raw: dict[str, Any]) -> Config:
    raw = dict(raw)
    programs = raw.pop("programs", {})
    if not isinstance(programs, dict) or not all(isinstance(t, dict) for t in programs.values()):
        raise StartupError("[programs] must hold one table per program: [programs.<name>]")
    downloads = _downloads(raw.pop("downloads", {}))
    for product, conf in downloads.items():
        if conf.program and conf.program not in programs:
            raise StartupError(f"[downloads.{product}] program: no program {conf.program!r} is "
                               f"configured; known: {', '.join(sorted(programs)) or 'none'}")
    if isinstance(raw.get("email"), dict) and "from" in raw["email"]:
        raw["email"] = {**raw["email"], "sender": raw["email"]["from"]}  # `from` is a keyword
        del raw["email"]["from"]
    config = parse_table(Config, raw, "")
    config = _with_secrets(config)
    return Config(database=config.database, queue=config.queue, server=config.server,
                  connectors=config.connectors, links=config.links,
                  email=replace(config.email, url=Secret(config.email.url)), programs=programs,
                  downloads=downloads)


def _downloads(tables: Any) -> dict[str, DownloadConfig]:
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise StartupError("[downloads] must hold one table per product: [downloads.<product>]")
    out = {}
    for product, table in tables.items():
        where = f"downloads.{product}"
        out[product] = check_download(parse_table(DownloadConfig, table, where), where)
    return out


def _with_secrets(config: Config) -> Config:
    def wrap(obj: Any) -> Any:
        changes = {k: Secret(getattr(obj, k)) for k in SECRET_KEYS if hasattr(obj, k)}
        return replace(obj, **changes)

    return replace(config, server=wrap(config.server),
                   connectors=ConnectorsConfig(stripe=wrap(config.connectors.stripe),
                                               paypal=wrap(config.connectors.paypal)))


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise StartupError(f"config file {path!r} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise StartupError(f"config file {path!r} is not valid TOML: {exc}") from None


def check_download(conf: DownloadConfig, where: str) -> DownloadConfig:
    """Refuse at start-up an archive that is missing, not a zip, or already holds the stamp."""
    path = PurePosixPath(conf.stamp_path)
    if not conf.stamp_path or path.is_absolute() or ".." in path.parts or "\\" in conf.stamp_path:
        raise StartupError(f"[{where}] stamp_path must be a relative path inside the archive, "
                           f"not {conf.stamp_path!r}")
    try:
        with zipfile.ZipFile(conf.archive) as archive:
            names = set(archive.namelist())
    except FileNotFoundError:
        raise StartupError(f"[{where}] archive: file {conf.archive!r} not found") from None
    except (zipfile.BadZipFile, IsADirectoryError, PermissionError):
        raise StartupError(f"[{where}] archive: {conf.archive!r} is not a readable zip "
                           "file") from None
    if conf.stamp_path in names:
        raise StartupError(f"[{where}] stamp_path: the archive already contains "
                           f"{conf.stamp_path!r}; ship it without that file")
    return conf
