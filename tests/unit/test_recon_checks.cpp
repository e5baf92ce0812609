#include <gtest/gtest.h>

#include "ddcsr/recon/pipeline.h"

namespace ddcsr {
namespace {

TEST(ReconChecks, ThinCortexAndWhiteOffTheFaBoundaryAreProblems) {
  // Plausible: the shipped model on the real scans (median 1.7-2.7 mm, FA falls at 81-94 %).
  EXPECT_TRUE(hemisphere_plausibility_problems("lh", 1.72, 81.0, 150000).empty());
  // A pial surface that never left white (seed 5 on XA30, rh).
  auto p = hemisphere_plausibility_problems("rh", 0.02, 82.7, 240000);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0], "rh: median thickness 0.02 mm: the pial surface hardly left the white surface");
  // A white surface 6 mm off (52-56 %), and both at once.
  p = hemisphere_plausibility_problems("lh", 2.1, 55.5, 150000);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("lh: FA falls outward across only 55.5% of the white surface"),
            std::string::npos);
  EXPECT_EQ(hemisphere_plausibility_problems("lh", 0.3, 50.0, 100).size(), 2u);
  // Nothing measured (no thickness, no FA samples): nothing claimed.
  EXPECT_TRUE(hemisphere_plausibility_problems("lh", -1.0, 0.0, 0).empty());
}

}  // namespace
}  // namespace ddcsr
