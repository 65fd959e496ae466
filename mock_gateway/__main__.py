import sys

from ._extra import MockExtraMissing, require_mock_extra

try:
    require_mock_extra()
except MockExtraMissing as error:
    sys.exit(f"mock-gateway: {error}")

from .cli import main  # after the check: it imports the extra's modules

sys.exit(main())
