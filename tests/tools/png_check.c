/* Test helper: decodes a PNG with libpng and prints its size, then the RGB
 * of each pixel asked for:  png_check FILE [X Y ...]  ->  "W H" then "R G B". */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 2 || argc % 2) {
        fprintf(stderr, "usage: png_check FILE [X Y ...]\n");
        return 2;
    }
    png_image img = {0};
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, argv[1])) {
        fprintf(stderr, "png_check: %s: %s\n", argv[1], img.message);
        return 1;
    }
    img.format = PNG_FORMAT_RGB;
    png_bytep buf = malloc(PNG_IMAGE_SIZE(img));
    if (!buf || !png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        fprintf(stderr, "png_check: %s: %s\n", argv[1], buf ? img.message : "out of memory");
        free(buf);
        return 1;
    }
    printf("%u %u\n", img.width, img.height);
    for (int i = 2; i + 1 < argc; i += 2) {
        unsigned x = (unsigned)atoi(argv[i]), y = (unsigned)atoi(argv[i + 1]);
        if (x >= img.width || y >= img.height) {
            printf("outside\n");
            continue;
        }
        png_bytep p = buf + ((size_t)y * img.width + x) * 3;
        printf("%u %u %u\n", p[0], p[1], p[2]);
    }
    free(buf);
    png_image_free(&img);
    return 0;
}
