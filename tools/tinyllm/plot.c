#include "plot.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common.h"

/* viridis, 11 stops: dark purple (0) to yellow (1) */
static const double VIRIDIS[11][3] = {
    {0.267, 0.005, 0.329}, {0.283, 0.141, 0.458}, {0.254, 0.265, 0.530}, {0.207, 0.372, 0.553},
    {0.164, 0.471, 0.558}, {0.128, 0.567, 0.551}, {0.135, 0.659, 0.518}, {0.267, 0.749, 0.441},
    {0.478, 0.821, 0.318}, {0.741, 0.873, 0.150}, {0.993, 0.906, 0.144}};

static void set_color(cairo_t *cr, double v) {
    if (!(v >= 0)) v = 0; /* NaN too */
    if (v > 1) v = 1;
    double x = v * 10;
    int i = (int)x;
    if (i >= 10) i = 9;
    double f = x - i;
    cairo_set_source_rgb(cr, VIRIDIS[i][0] + f * (VIRIDIS[i + 1][0] - VIRIDIS[i][0]),
                         VIRIDIS[i][1] + f * (VIRIDIS[i + 1][1] - VIRIDIS[i][1]),
                         VIRIDIS[i][2] + f * (VIRIDIS[i + 1][2] - VIRIDIS[i][2]));
}

static double text_width(cairo_t *cr, const char *s) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    return e.x_advance;
}

/* A white picture with a bold title line; text after it is regular. */
static cairo_t *start(cairo_surface_t *surface, const char *title) {
    cairo_t *cr = cairo_create(surface);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(cr, 13);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_move_to(cr, 6, 16);
    cairo_show_text(cr, title);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    return cr;
}

static cairo_status_t to_file(void *closure, const unsigned char *data, unsigned int length) {
    return fwrite(data, 1, length, closure) == length ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* The PNG written safely (common.h's out_open): never over a device or FIFO. */
static int finish(cairo_surface_t *surface, cairo_t *cr, const char *path, char *msg, size_t cap) {
    cairo_destroy(cr);
    out_file o;
    char why[200];
    int rc = -1;
    size_t n = strlen(path);
    if (n < 4 || strcasecmp(path + n - 4, ".png")) { /* the format follows the name: PNG only */
        snprintf(msg, cap, "%s: pictures are written as PNG (expected a file name ending in .png)", path);
    } else if (out_open(&o, path, NULL, why, sizeof why)) {
        snprintf(msg, cap, "%s: %s", path, why);
    } else {
        cairo_status_t st = cairo_surface_write_to_png_stream(surface, to_file, o.f);
        if (st != CAIRO_STATUS_SUCCESS) {
            out_abort(&o);
            snprintf(msg, cap, "%s: cannot write the PNG (%s)", path, cairo_status_to_string(st));
        } else if (out_commit(&o, why, sizeof why)) {
            snprintf(msg, cap, "%s: %s", path, why);
        } else {
            rc = 0;
        }
    }
    cairo_surface_destroy(surface);
    return rc;
}

/* A colour bar of the scale at (x, y), h pixels tall: 1 at the top, 0 at
 * the bottom, with ticks. */
static void colour_bar(cairo_t *cr, double x, double y, double h, const char *caption) {
    for (int i = 0; i < (int)h; i++) {
        set_color(cr, 1.0 - (double)i / (h - 1));
        cairo_rectangle(cr, x, y + i, 14, 1);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_font_size(cr, 10);
    const char *ticks[3] = {"1", "0.5", "0"};
    for (int t = 0; t < 3; t++) {
        cairo_move_to(cr, x + 18, y + t * (h - 1) / 2 + 4);
        cairo_show_text(cr, ticks[t]);
    }
    cairo_save(cr);
    cairo_move_to(cr, x + 44, y + h / 2 + text_width(cr, caption) / 2);
    cairo_rotate(cr, -M_PI / 2);
    cairo_show_text(cr, caption);
    cairo_restore(cr);
}

#define COLOUR_BAR_W 60

int plot_attention(const char *png_path, const char *title, const float *const *mats, const char *const *panel_titles,
                   int n_panels, const char *const *labels, int N, plot_geometry *geom, char *msg, size_t cap) {
    const double font = 11, title_h = 22;
    int cell = N <= 20 ? 24 : N <= 64 ? 12 : 6;
    /* labels stay readable: one every `every` rows when cells are smaller than the text */
    int every = cell >= 12 ? 1 : (12 + cell - 1) / cell;
    /* measure the labels once on a scratch surface */
    cairo_surface_t *scratch = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
    cairo_t *m = cairo_create(scratch);
    cairo_select_font_face(m, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(m, font);
    double label_w = 0;
    for (int i = 0; i < N; i++) label_w = fmax(label_w, text_width(m, labels[i]));
    cairo_destroy(m);
    cairo_surface_destroy(scratch);
    int margin = (int)ceil(label_w) + 8;
    int panel_w = margin + N * cell + 12, panel_h = (int)title_h + margin + N * cell + 12;
    int cols = (int)ceil(sqrt((double)n_panels)), rows = (n_panels + cols - 1) / cols;
    int W = cols * panel_w + COLOUR_BAR_W, H = (int)title_h + rows * panel_h;
    cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    cairo_t *cr = start(surface, title);
    if (geom) *geom = (plot_geometry){W, H, margin, (int)(2 * title_h) + margin, cell};
    for (int p = 0; p < n_panels; p++) {
        double x0 = (p % cols) * panel_w, y0 = title_h + (p / cols) * panel_h;
        double gx = x0 + margin, gy = y0 + title_h + margin; /* grid origin */
        cairo_set_font_size(cr, 12);
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_move_to(cr, gx, y0 + 15);
        cairo_show_text(cr, panel_titles[p]);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                if (j > i)
                    cairo_set_source_rgb(cr, 0.86, 0.86, 0.86); /* the causal mask */
                else
                    set_color(cr, mats[p][(size_t)i * N + j]);
                cairo_rectangle(cr, gx + j * cell, gy + i * cell, cell - (cell > 8), cell - (cell > 8));
                cairo_fill(cr);
            }
        cairo_set_font_size(cr, font);
        cairo_set_source_rgb(cr, 0, 0, 0);
        for (int i = 0; i < N; i++) { /* query tokens down the left, keys along the top (thinned, never dropped) */
            if (i % every && i != N - 1) continue;
            cairo_move_to(cr, gx - 4 - text_width(cr, labels[i]), gy + i * cell + cell * 0.5 + font * 0.35);
            cairo_show_text(cr, labels[i]);
            cairo_save(cr);
            cairo_move_to(cr, gx + i * cell + cell * 0.5 + font * 0.35, gy - 4);
            cairo_rotate(cr, -M_PI / 2);
            cairo_show_text(cr, labels[i]);
            cairo_restore(cr);
        }
    }
    colour_bar(cr, cols * panel_w + 6, 2 * title_h + margin, fmax(60, fmin(N * cell, 300)), "attention probability");
    return finish(surface, cr, png_path, msg, cap);
}

int plot_lens(const char *png_path, const char *title, const char *const *row_labels, int n_rows,
              const char *const *col_labels, int N, const char *const *texts, const float *probs, int *shown_from,
              char *msg, size_t cap) {
    const double font = 11;
    const int cell_w = 78, cell_h = 32, left = 90, top = 44;
    /* at most LENS_MAX_W pixels wide: a long prompt shows its last positions */
    int fit = (LENS_MAX_W - left - 10 - COLOUR_BAR_W) / cell_w, first = N > fit ? N - fit : 0;
    if (shown_from) *shown_from = first;
    char full_title[256];
    if (first)
        snprintf(full_title, sizeof full_title, "%s (positions %d..%d of %d)", title, first, N - 1, N);
    else
        snprintf(full_title, sizeof full_title, "%s", title);
    int W = left + (N - first) * cell_w + 10 + COLOUR_BAR_W, H = top + n_rows * cell_h + 10;
    if (H < top + 110) H = top + 110; /* room for the colour bar */
    cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    cairo_t *cr = start(surface, full_title);
    cairo_set_font_size(cr, font);
    for (int c = first; c < N; c++) {
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_move_to(cr, left + (c - first) * cell_w + 4, top - 6);
        cairo_show_text(cr, col_labels[c]);
    }
    for (int r = 0; r < n_rows; r++) {
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_move_to(cr, 6, top + r * cell_h + cell_h * 0.7);
        cairo_show_text(cr, row_labels[r]);
        for (int c = first; c < N; c++) {
            double p = probs[(size_t)r * N + c], x = left + (c - first) * cell_w, y = top + r * cell_h;
            set_color(cr, p);
            cairo_rectangle(cr, x, y, cell_w - 1, cell_h - 1);
            cairo_fill(cr);
            if (p > 0.55)
                cairo_set_source_rgb(cr, 0, 0, 0);
            else
                cairo_set_source_rgb(cr, 1, 1, 1);
            cairo_save(cr);
            cairo_rectangle(cr, x, y, cell_w - 3, cell_h);
            cairo_clip(cr);
            cairo_move_to(cr, x + 3, y + 13); /* the top token, and under it its probability */
            cairo_show_text(cr, texts[(size_t)r * N + c]);
            char pr[16];
            snprintf(pr, sizeof pr, "p %.2f", p);
            cairo_move_to(cr, x + 3, y + 27);
            cairo_show_text(cr, pr);
            cairo_restore(cr);
        }
    }
    colour_bar(cr, left + (N - first) * cell_w + 14, top, 100, "top-token probability");
    return finish(surface, cr, png_path, msg, cap);
}
