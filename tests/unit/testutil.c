/* knit tests - helpers shared by the unit tests. */
#include "testutil.h"

#include <stdlib.h>

uint64_t knit_test_scale(void)
{
    const char *s = getenv("KNIT_TEST_SCALE");
    long v = s ? strtol(s, NULL, 10) : 1;
    return v > 0 ? (uint64_t)v : 1;
}

uint64_t knit_test_iters(uint64_t n, uint64_t floor)
{
    uint64_t v = n / knit_test_scale();
    return v < floor ? floor : v;
}
