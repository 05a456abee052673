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
    } else if (out_open(&o, path, why, sizeof why)) {
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

int plot_attention(const char *png_path, const char *title, const float *const *mats, const char *const *panel_titles,
                   int n_panels, const char *const *labels, int N, plot_geometry *geom, char *msg, size_t cap) {
    const double font = 11, title_h = 22;
    int cell = N <= 20 ? 24 : N <= 64 ? 12 : 6;
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
    int W = cols * panel_w, H = (int)title_h + rows * panel_h;
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
        if (cell < 12) continue; /* too small for text */
        cairo_set_font_size(cr, font);
        cairo_set_source_rgb(cr, 0, 0, 0);
        for (int i = 0; i < N; i++) { /* query tokens down the left, keys along the top */
            cairo_move_to(cr, gx - 4 - text_width(cr, labels[i]), gy + i * cell + cell * 0.5 + font * 0.35);
            cairo_show_text(cr, labels[i]);
            cairo_save(cr);
            cairo_move_to(cr, gx + i * cell + cell * 0.5 + font * 0.35, gy - 4);
            cairo_rotate(cr, -M_PI / 2);
            cairo_show_text(cr, labels[i]);
            cairo_restore(cr);
        }
    }
    return finish(surface, cr, png_path, msg, cap);
}

int plot_lens(const char *png_path, const char *title, const char *const *row_labels, int n_rows,
              const char *const *col_labels, int N, const char *const *texts, const float *probs, char *msg,
              size_t cap) {
    const double font = 11;
    const int cell_w = 78, cell_h = 20, left = 90, top = 44;
    int W = left + N * cell_w + 10, H = top + n_rows * cell_h + 10;
    cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    cairo_t *cr = start(surface, title);
    cairo_set_font_size(cr, font);
    for (int c = 0; c < N; c++) {
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_move_to(cr, left + c * cell_w + 4, top - 6);
        cairo_show_text(cr, col_labels[c]);
    }
    for (int r = 0; r < n_rows; r++) {
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_move_to(cr, 6, top + r * cell_h + cell_h * 0.7);
        cairo_show_text(cr, row_labels[r]);
        for (int c = 0; c < N; c++) {
            double p = probs[(size_t)r * N + c];
            set_color(cr, p);
            cairo_rectangle(cr, left + c * cell_w, top + r * cell_h, cell_w - 1, cell_h - 1);
            cairo_fill(cr);
            if (p > 0.55)
                cairo_set_source_rgb(cr, 0, 0, 0);
            else
                cairo_set_source_rgb(cr, 1, 1, 1);
            cairo_save(cr);
            cairo_rectangle(cr, left + c * cell_w, top + r * cell_h, cell_w - 3, cell_h);
            cairo_clip(cr);
            cairo_move_to(cr, left + c * cell_w + 3, top + r * cell_h + cell_h * 0.7);
            cairo_show_text(cr, texts[(size_t)r * N + c]);
            cairo_restore(cr);
        }
    }
    return finish(surface, cr, png_path, msg, cap);
}
