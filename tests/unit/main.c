/* C unit tests: kernels and sampler (no model file needed). */
void run_kernel_tests(void);
void run_sampler_tests(void);

int main(void) {
    run_kernel_tests();
    run_sampler_tests();
    return 0;
}
