"""A plain singer-sdk tap and target (HubSpot objects into SQLite): the reference pair the
whole pipeline is measured against (bench/pipeline.py). Run each by path or with ``-m``."""
