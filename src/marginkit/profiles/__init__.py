"""Shipped profiles: parameter sets as data files, named after the venue and version they replicate."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

from marginkit.errors import InputError
from marginkit.io.profile_file import Profile, load_profile_file

PROFILE_DIRECTORY = Path(__file__).parent


@cache
def shipped_profiles() -> dict[str, Profile]:
    """Every profile shipped in this package, by name."""
    profiles: dict[str, Profile] = {}
    for path in sorted(PROFILE_DIRECTORY.glob("*.yaml")):
        profile = load_profile_file(path)
        if profile.name in profiles:
            raise InputError(f"profile name {profile.name!r} is shipped twice", file=str(path))
        profiles[profile.name] = profile
    return profiles


def shipped_profile(name: str) -> Profile:
    """The shipped profile called `name` (a copy: callers may not change the shipped one); InputError if none."""
    profiles = shipped_profiles()
    if name not in profiles:
        known = ", ".join(sorted(profiles))
        raise InputError(f"unknown profile {name!r} (shipped: {known})", field="--profile")
    return copy.deepcopy(profiles[name])


__all__ = ["PROFILE_DIRECTORY", "Profile", "shipped_profile", "shipped_profiles"]
