import sys

from inboxpay.cli import main

sys.exit(main())
