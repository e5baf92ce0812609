#!/usr/bin/env bash
# Test command: installs what is missing (test tools too), builds, and runs the whole suite with CTest,
# then the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build.sh
ctest --test-dir build -j"$(nproc 2>/dev/null || echo 2)" --output-on-failure --timeout 900
# Instrumented, the tests run 2-4x slower; to keep CI well under 25 minutes without ccache, nine
# tests whose time goes into long loops over the same code that shorter tests reach are left out
# here (they still run in the suite above): four whole-hemisphere DiffCoSeg runs, the features
# pipeline over many protocols, procedural-surface truth (twice: 81 s instrumented for touching
# banks at full resolution), exact tree distances, training targets.
scripts/test-sanitize.sh "-DiffCoSeg.Fsaverage5LeftHemisphereCoarse:DiffCoSeg.DeepNarrowGroovesAreFollowedAndBanksDoNotCross:DiffCoSeg.TanglesLeftBySmoothingAreRelaxedAway:\
DiffCoSeg.PialRepairKeepsMostOfTheWalksOnProceduralFolding:FeaturesPipeline.SameChannelsForAnyProtocolAndExactGridRoundTrip:SimulateGeometry.ProceduralSurfacesAreValidTruth:\
SimulateDistance.MatchesExactTreeDistances:SdfTargets.ExactFromSurfacesAndResampled:SimulateGeometry.TouchingPialBanksAtDefaultResolution"
