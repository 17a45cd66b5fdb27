"""Development tool: regenerate the initial schema migration (0001) from `hub.db.models`.

Until the first release the tables live in one initial revision; run
``python -m hub.db.regen_initial`` after changing a model. Later revisions (0002 on: triggers,
data moves) are hand-written and chain from 0001.
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
