/* Pictures for the stepper, drawn with Cairo (text through fontconfig,
 * PNG through libpng): attention heatmaps and the logit-lens grid. */
#ifndef TINYLLM_CLI_PLOT_H
#define TINYLLM_CLI_PLOT_H

#include <stddef.h>

/* One or more attention heatmaps in a grid. mats[i] is (N, N) row-major:
 * row = query position, column = key position; cells above the diagonal
 * (the causal mask) are drawn grey; a colour bar shows the scale. labels: N
 * token texts, thinned (never dropped) when the cells are small. Returns 0,
 * or -1 with a message. */
typedef struct {
    int width, height; /* of the picture */
    int grid_x, grid_y; /* top-left corner of the first panel's grid */
    int cell;           /* cell size in pixels */
} plot_geometry;

int plot_attention(const char *png_path, const char *title, const float *const *mats, const char *const *panel_titles,
                   int n_panels, const char *const *labels, int N, plot_geometry *geom, char *msg, size_t cap);

/* The logit lens as a grid: rows = stages (embed, layer 0, ...), columns =
 * positions; each cell shows the top token's text and probability on a
 * colour for it, with a colour bar. texts[r * N + c], probs[r * N + c]. A
 * prompt too long for LENS_MAX_W pixels shows its last positions; the first
 * one shown goes to *shown_from (may be NULL). */
#define LENS_MAX_W 2000
int plot_lens(const char *png_path, const char *title, const char *const *row_labels, int n_rows,
              const char *const *col_labels, int N, const char *const *texts, const float *probs, int *shown_from,
              char *msg, size_t cap);

#endif
