// Umbrella header: every public header of nnlift.
// SPDX-License-Identifier: MIT
#pragma once

#include <nnlift/activation.hpp>
#include <nnlift/csv.hpp>
#include <nnlift/decompose.hpp>
#include <nnlift/encoding.hpp>
#include <nnlift/evaluate.hpp>
#include <nnlift/input_map.hpp>
#include <nnlift/jennrich.hpp>
#include <nnlift/mixture.hpp>
#include <nnlift/model.hpp>
#include <nnlift/moments.hpp>
#include <nnlift/npy.hpp>
#include <nnlift/power_method.hpp>
#include <nnlift/stream.hpp>
#include <nnlift/subspace.hpp>
#include <nnlift/synth.hpp>
#include <nnlift/tensor.hpp>
#include <nnlift/train.hpp>
#include <nnlift/types.hpp>
#include <nnlift/whiten.hpp>
