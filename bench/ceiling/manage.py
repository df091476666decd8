"""`python bench/ceiling/manage.py migrate --run-syncdb`: creates the ceiling's two tables in its own database."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ceiling.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
