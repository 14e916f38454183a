"""Test material for the bundle: a fake collector set and a generator of hostile bundles.

``fake_collectors()`` stands in for a real host so round-trip tests run anywhere; it plants
known secrets (``SECRETS``) in XenStore and quotes one in the probe log.  ``hostile`` builds
one bundle per attack the safe reader must refuse (see ``hostile.CASES``).
"""
