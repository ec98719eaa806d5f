"""The 30-day USD/CLP forecaster: reads this folder's .env (the environment overrides it)."""

import sys
from pathlib import Path

from fxforecast.cli import main

if __name__ == "__main__":
    env_file = Path(__file__).resolve().with_name(".env")
    sys.exit(main(["run", "--horizon", "30", "--env-file", str(env_file), *sys.argv[1:]]))
