"""The one-command local run: Azurite, the cloud emulators and the devhost, seeded with the reference inventory."""
