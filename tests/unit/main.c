/* C unit tests: kernels, sampler, and (given a model path) the lifecycle loop. */
void run_kernel_tests(void);
void run_sampler_tests(void);
void run_lifecycle_tests(const char *model_path);

int main(int argc, char **argv) {
    run_kernel_tests();
    run_sampler_tests();
    run_lifecycle_tests(argc > 1 ? argv[1] : 0);
    return 0;
}
