/* cli-common.c — shared helpers of crucible-cli's commands
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#include "cli-common.h"

#include <glib-unix.h>
#include <glib/gi18n-lib.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int
cru_cli_fail (const GError *error)
{
  g_printerr ("crucible-cli: %s\n", error ? error->message : _("unknown error"));
  return CRU_EXIT_FAILED;
}

gboolean
cru_cli_parse_size (const char *text, guint64 *out, GError **error)
{
  static const struct { const char *suffix; double factor; } units[] = {
    { "kib", 1024.0 }, { "mib", 1048576.0 }, { "gib", 1073741824.0 }, { "tib", 1099511627776.0 },
    { "kb", 1e3 }, { "mb", 1e6 }, { "gb", 1e9 }, { "tb", 1e12 },
    { "k", 1e3 }, { "m", 1e6 }, { "g", 1e9 }, { "t", 1e12 }, { "b", 1.0 }, { "", 1.0 },
  };
  char *end = NULL;
  double value;

  if (text == NULL || *text == '\0')
    goto bad;
  value = g_ascii_strtod (text, &end);
  if (end == text || !isfinite (value) || value <= 0)
    goto bad;
  while (*end == ' ')
    end++;
  for (guint i = 0; i < G_N_ELEMENTS (units); i++)
    if (g_ascii_strcasecmp (end, units[i].suffix) == 0)
      {
        double bytes = value * units[i].factor;
        if (bytes < 1 || bytes > 1e18)
          goto bad;
        *out = (guint64) bytes;
        return TRUE;
      }
bad:
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
               _("“%s” is not a size (examples: 5GB, 500MB, 2GiB)"), text ? text : "");
  return FALSE;
}

char *
cru_cli_format_size (guint64 bytes)
{
  return g_format_size (bytes);
}

gboolean
cru_cli_parse_options (GOptionContext *ctx, int *argc, char ***argv)
{
  g_autoptr(GError) error = NULL;

  if (!g_option_context_parse (ctx, argc, argv, &error))
    {
      g_printerr ("crucible-cli: %s\n", error->message);
      g_printerr (_("Run “crucible-cli %s --help” for usage.\n"), (*argv)[0]);
      return FALSE;
    }
  return TRUE;
}

static gboolean
on_signal (gpointer user_data)
{
  GCancellable *cancellable = user_data;

  if (g_cancellable_is_cancelled (cancellable))
    {
      /* A second Ctrl+C while cleaning up: leave now. */
      g_printerr (_("\ncrucible-cli: interrupted\n"));
      _exit (CRU_EXIT_CANCELLED);
    }
  g_printerr (_("\ncrucible-cli: cancelling…\n"));
  g_cancellable_cancel (cancellable);
  return G_SOURCE_CONTINUE;
}

GCancellable *
cru_cli_get_cancellable (void)
{
  static GCancellable *cancellable;

  if (cancellable == NULL)
    {
      cancellable = g_cancellable_new ();
      g_unix_signal_add (SIGINT, on_signal, cancellable);
      g_unix_signal_add (SIGTERM, on_signal, cancellable);
    }
  return cancellable;
}
