/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "e2ee-fingerprint.h"
