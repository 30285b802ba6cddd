"""pysimdamicm's ROOT layout: ``vector<T>`` and ``vector<vector<T>>`` branches (``--layout pysimdamicm``).

waders writes its trees with uproot (see :mod:`waders.io.root.clusters`): per-pixel
quantities are flattened counted arrays.  Existing ROOT macros written for
pysimdamicm loop over ``pixels_x->at(i).at(j)``; they need the original layout:

* cluster trees (``clustersRec``, ``clustersTrue``, ``pixelizedEvent``): the
  entry id (``RUNID``/``event``) and ``Nclusters`` as ``int``; one ``vector<T>``
  per per-cluster quantity; one ``vector<vector<T>>`` per per-pixel (or other
  per-cluster list) quantity, one inner vector per cluster;
* record trees (``info``, ``process_config``, ``geant4_config``): numbers as
  scalar ``/I`` or ``/D`` branches, strings as ``std::string``, per-entry arrays
  as ``vector<T>``.

T is ``int`` for integer and boolean quantities and ``double`` for floating
point, as in pysimdamicm.

uproot (checked with 5.7.7) cannot write ``vector<vector<T>>`` TTree branches
(``mktree`` rejects ``var * var * T``; ``file[name] = ...`` writes an RNTuple
instead of a TTree), so this layout is written with ROOT itself (PyROOT, PyPI
package ``root``): :func:`convert_to_pysimdamicm` re-writes a file waders wrote
into the pysimdamicm layout.  The copy loops run in compiled C++ (no per-entry
Python loop).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from waders.core.errors import ConfigError, DataError

from ..atomic import atomic_path
from ._files import counter_of, open_root
from .clusters import CLUSTER_COUNTER, PIXEL_COUNT, read_clusters
from .records import read_records

__all__ = ["LAYOUTS", "convert_to_pysimdamicm", "require_pyroot", "tree_layout"]

#: Output layouts of the ROOT files (``--layout``).
LAYOUTS = ("waders", "pysimdamicm")

#: Per-entry cluster counters of waders' cluster trees (``pixelizedEvent`` counts hit collections).
_CLUSTER_COUNTERS = (CLUSTER_COUNTER, "Ncollections")

_CPP = r"""
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include "TTree.h"

namespace waders_pysimdamicm {

struct Column {
  virtual ~Column() = default;
  virtual void Set(Long64_t entry) = 0;
};

template <typename T>
struct Scalar : Column {
  T value{};
  const T* data;
  Scalar(TTree* tree, const char* name, std::uintptr_t address, const char* leaf)
      : data(reinterpret_cast<const T*>(address)) {
    tree->Branch(name, &value, (std::string(name) + "/" + leaf).c_str());
  }
  void Set(Long64_t entry) override { value = data[entry]; }
};

template <typename T>
struct Vector : Column {
  std::vector<T>* value = new std::vector<T>();
  const T* data;
  const Long64_t* offsets;
  Vector(TTree* tree, const char* name, std::uintptr_t address, std::uintptr_t entry_offsets)
      : data(reinterpret_cast<const T*>(address)), offsets(reinterpret_cast<const Long64_t*>(entry_offsets)) {
    tree->Branch(name, &value);
  }
  ~Vector() override { delete value; }
  void Set(Long64_t entry) override { value->assign(data + offsets[entry], data + offsets[entry + 1]); }
};

template <typename T>
struct VectorVector : Column {
  std::vector<std::vector<T>>* value = new std::vector<std::vector<T>>();
  const T* data;
  const Long64_t* outer;
  const Long64_t* inner;
  VectorVector(TTree* tree, const char* name, std::uintptr_t address, std::uintptr_t entry_offsets,
               std::uintptr_t list_offsets)
      : data(reinterpret_cast<const T*>(address)),
        outer(reinterpret_cast<const Long64_t*>(entry_offsets)),
        inner(reinterpret_cast<const Long64_t*>(list_offsets)) {
    tree->Branch(name, &value);
  }
  ~VectorVector() override { delete value; }
  void Set(Long64_t entry) override {
    value->clear();
    for (Long64_t k = outer[entry]; k < outer[entry + 1]; ++k)
      value->emplace_back(data + inner[k], data + inner[k + 1]);
  }
};

struct Text : Column {
  std::string* value = new std::string();
  std::vector<std::string> data;
  Text(TTree* tree, const char* name, const std::vector<std::string>& values) : data(values) {
    tree->Branch(name, &value);
  }
  ~Text() override { delete value; }
  void Set(Long64_t entry) override { *value = data[entry]; }
};

class Filler {
 public:
  explicit Filler(TTree* tree) : fTree(tree) {}
  void Int(const char* n, std::uintptr_t a) { fColumns.emplace_back(new Scalar<Int_t>(fTree, n, a, "I")); }
  void Double(const char* n, std::uintptr_t a) { fColumns.emplace_back(new Scalar<Double_t>(fTree, n, a, "D")); }
  void VInt(const char* n, std::uintptr_t a, std::uintptr_t o) {
    fColumns.emplace_back(new Vector<int>(fTree, n, a, o));
  }
  void VDouble(const char* n, std::uintptr_t a, std::uintptr_t o) {
    fColumns.emplace_back(new Vector<double>(fTree, n, a, o));
  }
  void VVInt(const char* n, std::uintptr_t a, std::uintptr_t o, std::uintptr_t i) {
    fColumns.emplace_back(new VectorVector<int>(fTree, n, a, o, i));
  }
  void VVDouble(const char* n, std::uintptr_t a, std::uintptr_t o, std::uintptr_t i) {
    fColumns.emplace_back(new VectorVector<double>(fTree, n, a, o, i));
  }
  void String(const char* n, const std::vector<std::string>& v) { fColumns.emplace_back(new Text(fTree, n, v)); }
  void Fill(Long64_t entries) {
    for (Long64_t entry = 0; entry < entries; ++entry) {
      for (auto& column : fColumns) column->Set(entry);
      fTree->Fill();
    }
  }

 private:
  TTree* fTree;
  std::vector<std::unique_ptr<Column>> fColumns;
};

}  // namespace waders_pysimdamicm
"""

_ROOT: Any = None


def require_pyroot() -> Any:
    """Import PyROOT (once) and declare the C++ filler.

    Raises
    ------
    ConfigError
        If ROOT is not installed (one-line error, exit code 2).
    """
    global _ROOT
    if _ROOT is not None:
        return _ROOT
    try:
        with warnings.catch_warnings():  # the PyPI 'root' package warns that it is an alpha release
            warnings.simplefilter("ignore")
            import ROOT  # type: ignore[import-not-found]
    except ImportError:
        raise ConfigError(
            "--layout pysimdamicm writes vector<vector<T>> branches with ROOT, which is not installed",
            hint="pip install root (or use the default --layout waders)",
        ) from None
    ROOT.gROOT.SetBatch(True)
    if not hasattr(ROOT, "waders_pysimdamicm"):
        _vector_vector_int_dictionary(ROOT)
        ROOT.gInterpreter.Declare(_CPP)
    _ROOT = ROOT
    return ROOT


def _vector_vector_int_dictionary(root: Any) -> None:
    """Compile the dictionary of ``vector<vector<int>>`` (ROOT ships the ``double`` one only; ~10 s)."""
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="waders-root-dict-") as build:
        try:
            os.chdir(build)  # ACLiC writes its files into the working directory
            root.gInterpreter.GenerateDictionary("vector<vector<int> >", "vector")
        finally:
            os.chdir(here)
    if not root.TClass.GetClass("vector<vector<int> >").GetCollectionProxy():
        raise ConfigError(
            "ROOT could not compile the dictionary of vector<vector<int> > for --layout pysimdamicm",
            hint="install a C++ compiler (g++) for ROOT, or use the default --layout waders",
        )


def _offsets(counts: Any) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.int64)
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _values(array: ak.Array, name: str) -> tuple[np.ndarray, bool]:
    """Flat contiguous values (int32 or float64) and whether they are integers."""
    values = ak.to_numpy(ak.flatten(array, axis=None)) if array.ndim > 1 else ak.to_numpy(array)
    kind = np.asarray(values).dtype.kind
    if kind in "biu":
        return np.ascontiguousarray(values, dtype=np.int32), True
    if kind == "f":
        return np.ascontiguousarray(values, dtype=np.float64), False
    raise DataError(f"branch '{name}' of type {array.type} has no pysimdamicm equivalent")


class _Tree:
    """One output TTree filled by the C++ filler (keeps the numpy buffers alive)."""

    def __init__(self, root: Any, name: str, title: str) -> None:
        self.tree = root.TTree(name, title)
        self.filler = root.waders_pysimdamicm.Filler(self.tree)
        self._keep: list[np.ndarray] = []

    def _address(self, array: np.ndarray) -> int:
        self._keep.append(array)
        return int(array.ctypes.data)

    def scalar(self, name: str, array: Any) -> None:
        values, is_int = _values(ak.Array(np.asarray(array)), name)
        (self.filler.Int if is_int else self.filler.Double)(name, self._address(values))

    def vector(self, name: str, array: ak.Array) -> None:
        values, is_int = _values(array, name)
        offsets = _offsets(ak.num(array, axis=1))
        (self.filler.VInt if is_int else self.filler.VDouble)(name, self._address(values), self._address(offsets))

    def vector_vector(self, name: str, array: ak.Array) -> None:
        values, is_int = _values(array, name)
        outer = _offsets(ak.num(array, axis=1))
        inner = _offsets(ak.flatten(ak.num(array, axis=2)))
        fill = self.filler.VVInt if is_int else self.filler.VVDouble
        fill(name, self._address(values), self._address(outer), self._address(inner))

    def string(self, name: str, array: ak.Array, root: Any) -> None:
        values = root.std.vector("std::string")()
        for text in ak.to_list(array):
            values.push_back(str(text))
        self._keep.append(values)  # type: ignore[arg-type]
        self.filler.String(name, values)

    def fill(self, entries: int) -> None:
        self.filler.Fill(entries)
        self.tree.Write()


def _cluster_tree(root: Any, source: Path, name: str, title: str, count_branch: str) -> None:
    data = read_clusters(source, name, count_branch=count_branch)
    clusters = data["clusters"]
    out = _Tree(root, name, title)
    for field in data.fields:
        if field != "clusters":
            out.scalar(field, data[field])
    out.scalar(CLUSTER_COUNTER, ak.num(clusters, axis=1))
    groups = [f for f in clusters.fields if clusters[f].ndim == 3 and clusters[f].fields]
    dropped = {f"N_{group}" for group in groups}
    for field in clusters.fields:
        if field in groups or field in dropped:
            continue
        if clusters[field].ndim == 2:
            out.vector(field, clusters[field])
        else:
            raise DataError(f"tree {name}: branch '{field}' has no pysimdamicm equivalent")
    for group in groups:
        for field in clusters[group].fields:
            out.vector_vector(field, clusters[group][field])
    if PIXEL_COUNT not in clusters.fields and "pixels" in groups:
        out.vector(PIXEL_COUNT, ak.num(clusters["pixels"], axis=2))
    out.fill(len(data))


def _records_tree(root: Any, source: Path, name: str, title: str) -> None:
    data = read_records(source, name)
    out = _Tree(root, name, title)
    for field in data.fields:
        column = data[field]
        if column.type.content.parameter("__array__") == "string":
            out.string(field, column, root)
        elif column.ndim == 2:
            out.vector(field, column)
        elif column.ndim == 1:
            out.scalar(field, ak.to_numpy(column))
        else:
            raise DataError(f"tree {name}: branch '{field}' has no pysimdamicm equivalent")
    out.fill(len(data))


def tree_layout(source: str | Path) -> list[tuple[str, str, str | None]]:
    """(name, title, per-entry cluster counter or None for record trees) of every TTree of a waders file."""
    found = []
    with open_root(source) as file:
        for key, classname in file.classnames(recursive=False).items():
            if classname != "TTree":
                continue
            name = key.split(";")[0]
            if any(entry[0] == name for entry in found):
                continue
            tree = file[name]
            counters = {counter_of(branch) for branch in tree.branches}
            counter = next((c for c in _CLUSTER_COUNTERS if c in counters and c in tree), None)
            found.append((name, str(tree.title), counter))
    return found


def convert_to_pysimdamicm(source: str | Path, destination: str | Path | None = None) -> Path:
    """Re-write a ROOT file written by waders in pysimdamicm's layout (see the module docstring).

    Parameters
    ----------
    source : path
        File written by waders (default layout).
    destination : path, optional
        Output file (written atomically); default: replace ``source``.

    Returns
    -------
    Path
        The pysimdamicm-layout file.

    Raises
    ------
    ConfigError
        If ROOT is not installed.
    DataError
        If a branch has no pysimdamicm equivalent.
    """
    root = require_pyroot()
    source = Path(source)
    destination = Path(destination) if destination is not None else source
    trees = tree_layout(source)
    with atomic_path(destination) as tmp:
        handle = root.TFile.Open(str(tmp), "RECREATE")
        if not handle or handle.IsZombie():
            raise DataError(f"ROOT cannot create {destination}")
        try:
            for name, title, counter in trees:
                handle.cd()
                if counter is None:
                    _records_tree(root, source, name, title)
                else:
                    _cluster_tree(root, source, name, title, counter)
        finally:
            handle.Close()
    return destination
