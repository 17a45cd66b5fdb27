"""Development tool: regenerate the initial schema migration (0001) from `hub.db.models`.

The tables were kept in one initial revision while no database outside the tests held them.
Since 0003 (the first schema change for databases already in use) 0001 is frozen: a model
change gets a hand-written revision of its own, as 0002 (triggers) and 0003 (indexes) are, and
this tool is only for starting a fresh line of migrations.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from alembic import command

from hub.db.session import MIGRATIONS, alembic_config, make_engine

INITIAL = MIGRATIONS / "versions" / "0001_initial.py"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        scripts = Path(tmp) / "migrations"
        (scripts / "versions").mkdir(parents=True)
        for name in ("env.py", "script.py.mako"):
            shutil.copy(MIGRATIONS / name, scripts / name)
        engine = make_engine(f"sqlite:///{Path(tmp) / 'empty.db'}")
        cfg = alembic_config(engine)
        cfg.set_main_option("script_location", str(scripts))
        command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
        created = next((scripts / "versions").glob("0001_*.py"))
        text = created.read_text()
        text = "\n".join(line for line in text.splitlines() if not line.startswith("Create Date"))
        INITIAL.write_text(text + "\n")
    print(f"wrote {INITIAL}")


if __name__ == "__main__":
    main()
