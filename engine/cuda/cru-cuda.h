/* cru-cuda.h — what the CUDA module exports besides the backend vtable
 *
 * The engine opens libcrucible-cuda.so with GModule (cru_backend_cuda_load) and looks these
 * up by name, so nothing here is linked into libcrucible.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */
#pragma once

#include <gmodule.h>
#include "cru-backend.h"

G_BEGIN_DECLS

/* CRU_BACKEND_CUDA_SYMBOL */
G_MODULE_EXPORT CruBackend *cru_backend_cuda_new (GError **error);

/* SDM-W statistics pass on the GPU: @mass[m] = Σ |Δ_m| over the kept changes of model m in
 * this tensor (the same sum the CPU's stats_accumulate adds to the model's M_m). @backend
 * must come from cru_backend_cuda_new. */
#define CRU_BACKEND_CUDA_SDM_MASS_SYMBOL "cru_backend_cuda_sdm_kept_mass"
typedef gboolean (*CruBackendCudaSdmMassFunc) (CruBackend *backend, const CruMethod *method,
                                               const CruMethodCall *call, double *mass,
                                               GError **error);
G_MODULE_EXPORT gboolean cru_backend_cuda_sdm_kept_mass (CruBackend *backend,
                                                         const CruMethod *method,
                                                         const CruMethodCall *call,
                                                         double *mass, GError **error);

G_END_DECLS
