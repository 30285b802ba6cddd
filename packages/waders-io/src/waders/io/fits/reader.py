"""Read skipper-CCD FITS files into :class:`~waders.core.image.SkipperImage`.

Supported inputs:

* **raw multi-skip images** (one or two amplifiers per HDU, any binning, polarity
  inversion, the Leach first-column fix), read lazily by row blocks;
* **averaged images**, including **multi-extension files with one amplifier per
  extension** (the DAMIC-M ACM ``.fz`` files, compressed with fpack; the SENSEI LTA
  files, whose first amplifier is in the primary HDU and whose header values are strings).

The run header and the geometry are read once, here, and exposed on the container
(``image.header``, ``image.geometry``, ``image.meta``); processes never re-parse them.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from waders.core.amplifiers import apply_amplifier_map
from waders.core.errors import InputFileError, WadersError
from waders.core.geometry import ImageGeometry
from waders.core.image import Amplifier, SkipperImage
from waders.core.inputs import InputConfig
from waders.core.paths import check_regular_file

from .header import HeaderInfo, header_count, parse_header
from .layout import split_geometries
from .raw import FitsRawSamples, RowSource

__all__ = ["FITS_SUFFIXES", "TRUTH_EXTNAMES", "read_image"]

log = logging.getLogger(__name__)

#: File name endings read as FITS.
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fz", ".fits.fz", ".fits.gz", ".fits.bz2")
_STRUCTURAL = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT", "EXTEND"}
_STRUCTURAL_PREFIXES = ("ZNAXIS", "ZTILE", "ZNAME", "ZVAL", "ZBITPIX", "ZCMPTYPE", "ZQUANTIZ", "ZDITHER", "ZIMAGE")


def _check_path(path: Path) -> None:
    check_regular_file(path, "a FITS file")


def _header_dict(header: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in header.items():
        if key in ("COMMENT", "HISTORY", "") or key in _STRUCTURAL or key.startswith(_STRUCTURAL_PREFIXES):
            continue
        out[key] = value
    return out


def _open(path: Path) -> tuple[Any, Any]:
    """Open a FITS file; return the HDU list and the file handle (close both)."""
    from astropy.io import fits

    try:
        handle = path.open("rb")
    except OSError as err:
        raise InputFileError(f"{path}: cannot read ({err.strerror})") from None
    try:  # our own handle: astropy leaves its file open when it fails on a broken header
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(handle, memmap=True, lazy_load_hdus=False)
    except Exception as err:
        handle.close()
        expected = OSError | ValueError | TypeError | IndexError | KeyError | OverflowError
        if not isinstance(err, expected) and not raised_by_astropy(err):
            raise
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "truncated" in text.lower() or "end of file" in text.lower():
            raise InputFileError(f"{path}: truncated FITS file ({text})", hint="copy the file again") from None
        raise InputFileError(f"{path}: not a readable FITS file ({text})") from None
    if caught:
        hdul.close()
        text = str(caught[0].message).splitlines()[0]
        handle.close()
        raise InputFileError(f"{path}: corrupt or truncated FITS file ({text})", hint="copy the file again")
    return hdul, handle


def _axis(hdu: Any, key: str, path: Path) -> int:
    """Length of an image axis from the header, checked (a compressed HDU takes it from ZNAXISn)."""
    value = header_count(hdu.header, key, f"{path} HDU {hdu.name or 0}", maximum=1 << 31)
    if value is None:
        raise InputFileError(f"{path}: HDU {hdu.name or 0} has no {key}")
    return value


def raised_by_astropy(err: BaseException) -> bool:
    """True when ``err`` comes from inside astropy (the FITS library refused the file's content)."""
    tb = err.__traceback__
    while tb is not None:
        if f"{os.sep}astropy{os.sep}" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def corrupt_file(path: Path, err: BaseException) -> InputFileError:
    """The error for a file astropy cannot parse: one line with its reason."""
    text = " ".join(str(err).split("fix it first")[0].split()).rstrip(" ,.") or type(err).__name__
    return InputFileError(
        f"{path}: corrupt FITS file ({type(err).__name__}: {text[:200]})", hint="fix the header or copy the file again"
    )


#: EXTNAMEs of the Monte-Carlo-truth HDUs of simulated/pasted images (PasteClusterProcess): never amplifiers.
TRUTH_EXTNAMES = frozenset({"MONTECARLOTRUTH", "MCT_ID", "MCT_ERAW", "MCT_EMCT"})


def _data_hdus(hdul: Any, image_cfg: Any, path: Path) -> list[int]:
    def resolve(ext: Any) -> int:
        names = [h.name or str(i) for i, h in enumerate(hdul)]
        try:
            index = hdul.index_of(ext)
        except (KeyError, IndexError, ValueError, TypeError):
            index = None
        if not isinstance(index, int) or not 0 <= index < len(hdul):
            raise InputFileError(
                f"{path}: no HDU {ext!r} (HDUs: {', '.join(names)})",
                hint="check input.image.extensions / --ext",
            )
        return index

    requested = image_cfg.extensions
    if requested is None:
        indices = [
            i
            for i, hdu in enumerate(hdul)
            if hdu.is_image and hdu.header.get("NAXIS", 0) == 2 and (hdu.name or "").upper() not in TRUTH_EXTNAMES
        ]
        if not indices:
            raise InputFileError(f"{path}: no 2-D image in any HDU")
        return indices
    indices = [resolve(ext) for ext in (requested if isinstance(requested, list) else [requested])]
    for index in indices:
        hdu = hdul[index]
        if not hdu.is_image or hdu.header.get("NAXIS", 0) != 2:
            raise InputFileError(
                f"{path}: HDU {index} holds no 2-D image",
                hint="set input.image.extensions to the HDUs with data (null = all)",
            )
    return indices


def _run_header(hdul: Any, data_index: int, image_cfg: Any, path: Path) -> dict[str, Any]:
    """Return the merged header: the run header (``ext_header``, else the primary HDU) then the data HDU's own cards."""
    merged: dict[str, Any] = {}
    if image_cfg.ext_header is not None:
        try:
            merged.update(_header_dict(hdul[image_cfg.ext_header].header))
        except (KeyError, IndexError):
            raise InputFileError(f"{path}: no HDU {image_cfg.ext_header!r} for input.image.ext_header") from None
    elif data_index != 0:
        merged.update(_header_dict(hdul[0].header))
    merged.update(_header_dict(hdul[data_index].header))
    return merged


def _is_raw(info: HeaderInfo, naxis1: int, image_cfg: Any, path: Path, keyword: str) -> bool:
    nskips = info.nskips
    if image_cfg.skip_image is False or info.averaged_flag:
        return False
    if nskips is None:
        if image_cfg.skip_image:
            raise InputFileError(
                f"{path}: no skip-count keyword (tried {keyword})",
                hint="set input.convention.Nskips to the keyword your DAQ writes, or skip_image: false",
            )
        return False
    if nskips <= 1:
        return False
    if info.pixel_cols is not None:
        if naxis1 == info.pixel_cols * nskips:
            return True
        if naxis1 == info.pixel_cols and not image_cfg.skip_image:
            return False
    if naxis1 % nskips:
        raise InputFileError(
            f"{path}: NAXIS1={naxis1} is not divisible by the skip count {info.nskips_keyword}={nskips}",
            hint="check input.convention.Nskips, or set input.image.skip_image: false for an averaged image",
        )
    return True


def _memmap_info(hdu: Any, path: Path) -> tuple[int, str, float, float] | None:
    """(offset, dtype, bscale, bzero) for uncompressed data stored contiguously, else None."""
    from astropy.io import fits

    scaling = [_scale_card(hdu, key, default, path) for key, default in (("BSCALE", 1.0), ("BZERO", 0.0))]
    if isinstance(hdu, fits.CompImageHDU) or "BLANK" in hdu.header:
        return None
    if path.suffix.lower() in (".gz", ".bz2", ".zip"):  # compressed on disk: the file size says nothing
        return None
    bitpix = hdu.header["BITPIX"]
    dtype = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}.get(bitpix)
    if dtype is None:
        raise InputFileError(f"{path}: HDU {hdu.name or 0} has an invalid BITPIX={bitpix!r}")
    offset = hdu.fileinfo()["datLoc"]
    size = abs(bitpix) // 8 * hdu.header["NAXIS1"] * hdu.header["NAXIS2"]
    if offset + size > path.stat().st_size:
        raise InputFileError(
            f"{path}: truncated FITS file: HDU {hdu.name or 0} needs {offset + size} bytes, "
            f"the file has {path.stat().st_size}",
            hint="copy the file again",
        )
    return offset, dtype, scaling[0], scaling[1]


def _scale_card(hdu: Any, key: str, default: float, path: Path) -> float:
    value = hdu.header.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or (key == "BSCALE" and number == 0):
        raise InputFileError(
            f"{path}: header keyword {key}={str(value).strip()!r} of HDU {hdu.name or 0} is not a valid scaling",
            hint=f"fix {key} in the file header",
        )
    return number


def _averaged_data(hdu: Any, path: Path, index: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            data = np.asarray(hdu.data, dtype=np.float64)
    except (OSError, ValueError, TypeError, Warning) as err:
        raise InputFileError(f"{path}: cannot read the data of HDU {hdu.name or 0} ({err})") from None
    if np.isinf(data).any():  # NaN marks masked pixels in processed images; an infinite charge is corruption
        raise InputFileError(
            f"{path}: {int(np.count_nonzero(np.isinf(data)))} pixel(s) of HDU {hdu.name or index} are infinite",
            hint="the file is corrupt; copy it again or leave it out",
        )
    return data


def read_image(
    path: str | Path,
    config: InputConfig | Mapping[str, Any] | None = None,
    *,
    lazy: bool | None = None,
    lazy_threshold_bytes: int = 1 << 30,
) -> SkipperImage:
    """Read a skipper-CCD FITS file.

    Parameters
    ----------
    path : path
        FITS file (``.fits``, ``.fz``, ...).
    config : InputConfig or mapping, optional
        The ``input`` section of an analysis configuration (which HDUs, header
        conventions, geometry, corrections); default: detect everything.
    lazy : bool, optional
        Keep raw samples on disk and read them by row blocks; default: only when the
        raw data exceed ``lazy_threshold_bytes`` (as float64) or a correction needs it.
    lazy_threshold_bytes : int
        Size above which raw samples are not loaded into memory.

    Returns
    -------
    SkipperImage
        Raw images carry ``amplifier.raw`` (rows, cols, skips); averaged images carry
        the product ``"mean_compressed"``.

    Raises
    ------
    InputFileError
        Missing, unreadable, truncated or inconsistent files, with the reason.
    """
    path = Path(path)
    _check_path(path)
    if not isinstance(config, InputConfig):
        config = InputConfig.from_mapping(config)
    image_cfg = config.image
    hdul, handle = _open(path)
    try:
        indices = _data_hdus(hdul, image_cfg, path)
        multi = len(indices) > 1
        amplifiers: dict[str, Amplifier] = {}
        run_header: dict[str, Any] = {}
        infos: list[HeaderInfo] = []
        raw_flags: list[bool] = []
        for index in indices:
            hdu = hdul[index]
            header = _run_header(hdul, index, image_cfg, path)
            run_header = run_header or header
            info = parse_header(header, config, str(path))
            nrows, naxis1 = (_axis(hdu, key, path) for key in ("NAXIS2", "NAXIS1"))
            keyword = config.convention.Nskips or "NDCMS, NDCM, NSAMP"
            raw = _is_raw(info, naxis1, image_cfg, path, keyword)
            ncols = naxis1 // info.nskips if raw and info.nskips else naxis1
            extname = (hdu.name or "").strip()
            base = extname if extname and extname != "PRIMARY" else f"EXT{index}"
            aliases = (f"EXT{index}",) if base != f"EXT{index}" else ()
            geometries = split_geometries(
                nrows=nrows,
                ncols=ncols,
                info=info,
                image_cfg=image_cfg,
                header=header,
                base_name=base,
                aliases=aliases,
                extension=index,
                multi_hdu=multi,
                source=str(path),
            )
            amp_header = _header_dict(hdu.header)
            if raw:
                source = RowSource(
                    path,
                    index,
                    (nrows, naxis1),
                    memmap_info=_memmap_info(hdu, path),
                    leach=(info.ampl or "UL") if image_cfg.correct_leach_bug else None,
                    invert=image_cfg.correct_polarity,
                )
                samples = [
                    FitsRawSamples(source, g.col_offset, g.ncols, int(info.nskips or 1), mirrored=g.mirrored)
                    for g in geometries
                ]
                total = sum(s.nbytes for s in samples)
                keep_lazy = lazy if lazy is not None else total > lazy_threshold_bytes
                for geometry, sample in zip(geometries, samples, strict=True):
                    data = sample if keep_lazy else np.asarray(sample)
                    amplifiers[geometry.name] = Amplifier(geometry, raw=data, header=amp_header)
            else:
                data = _averaged_data(hdu, path, index)
                if image_cfg.correct_polarity:
                    data = float(np.max(data)) - data
                for geometry in geometries:
                    block = data[:, geometry.col_offset : geometry.col_offset + geometry.ncols]
                    amp = Amplifier(geometry, header=amp_header)
                    amp.set("mean_compressed", geometry.to_file_layout(block).copy())
                    amplifiers[geometry.name] = amp
            infos.append(info)
            raw_flags.append(raw)
        if len(set(raw_flags)) > 1:
            raise InputFileError(f"{path}: mixes raw and averaged HDUs", hint="select HDUs with input.image.extensions")
    except (MemoryError, KeyboardInterrupt, WadersError):
        raise
    except Exception as err:  # astropy parses cards and structure lazily: a corrupt file fails here
        if not raised_by_astropy(err):
            raise
        raise corrupt_file(path, err) from None
    finally:
        hdul.close()
        handle.close()  # astropy does not close a handle it wrapped (gzip)
    if config.amplifiers:
        mapped = apply_amplifier_map({n: a.geometry for n, a in amplifiers.items()}, config.amplifiers, str(path))
        for name, amp in amplifiers.items():
            amp.geometry = mapped[name]
    info = infos[0]
    layout = "multi-extension" if multi else ("two-amplifier" if len(amplifiers) == 2 else "single")
    geometry = ImageGeometry(
        {name: amp.geometry for name, amp in amplifiers.items()},
        nskips=int(info.nskips or 1) if raw_flags[0] else 1,
        averaged=not raw_flags[0],
        nskips_averaged=int(info.nskips or 1),
        exposure_time=info.exposure_time,
        read_time=info.read_time,
        layout=layout,
        extra={"daq": info.daq, "skip_keyword": info.nskips_keyword},
    )
    meta = {"file": path.name, **info.times}
    log.info("%s: %s, %d amplifier(s), %s", path.name, layout, len(amplifiers), "raw" if raw_flags[0] else "averaged")
    return SkipperImage(amplifiers, geometry, header=run_header, source=path, meta=meta)
