"""The 90-day USD/CLP forecaster: reads this folder's .env (the environment overrides it)."""

import sys
from pathlib import Path

from fxforecast.cli import main

if __name__ == "__main__":
    env_file = Path(__file__).resolve().with_name(".env")
    settings = ["--env-file", str(env_file)] if env_file.exists() else []  # else defaults
    sys.exit(main(["run", "--horizon", "90", *settings, *sys.argv[1:]]))
