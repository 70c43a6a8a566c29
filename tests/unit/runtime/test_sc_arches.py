"""One list of seccomp architectures (oci/seccomp.py): what config.json
accepts is what `features` reports, what libseccomp compiles, and what the
default profile picks from for this host."""

from __future__ import annotations

import seccomp

from portique.oci.seccomp import ARCHES
from portique.runtime.features import features
from portique.runtime.seccomp_default import _ARCHES as DEFAULT_PROFILE_ARCHES


def test_features_report_the_accepted_architectures() -> None:
    linux = features()["linux"]
    assert isinstance(linux, dict)
    assert linux["seccomp"]["archs"] == sorted(ARCHES)


def test_libseccomp_knows_every_accepted_architecture() -> None:
    unknown = [a for a in ARCHES if not hasattr(seccomp.Arch, a.removeprefix("SCMP_ARCH_"))]
    assert unknown == []


def test_default_profile_picks_from_the_list() -> None:
    for machine, arches in DEFAULT_PROFILE_ARCHES.items():
        assert set(arches) <= ARCHES, machine
