#include <stdio.h>
#include <math.h>

int main(void)
{
    printf("hello from imgscope buildtools, sqrt(2)=%.3f\n", sqrt(2.0));
    return 0;
}
