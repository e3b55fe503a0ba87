"""numba plumbing shared by the indicator kernels: the decorator, a fused multiply-add, C calls.

Imported only by the kernel modules, which only the engine imports, and the engine is loaded on
first use (see :mod:`ml.indicators`): loading the Dagster code location never imports numba.

* :data:`kernel` compiles with ``cache=True`` (the machine code is kept in ``__pycache__``, so a
  new process pays the compilation once per machine, not once per run), ``nogil=True`` (the
  engine runs kernels on a thread pool) and ``error_model="numpy"`` (a float division by zero
  gives inf / NaN as in numpy instead of raising, and costs no check). No ``fastmath``: every
  operation is rounded as written, which is what makes bit-for-bit agreement with TA-Lib possible.
* :func:`fma` is ``x * y + z`` rounded once (LLVM's ``llvm.fma.f64``: the FMA instruction where
  the CPU has one, a correctly rounded library call otherwise, the same bits either way). TA-Lib's
  EMA recursion is written with ``fma()``; reproducing it needs the same single rounding.
* :func:`call_c_real`, :func:`call_c_hlc` and :func:`call_c_bbands` call a C function of TA-Lib's
  signature at a raw address passed as an argument. A ctypes function object used as a global
  would bake its address into the machine code and make the kernel uncacheable; an address
  argument keeps it cacheable.
"""

from __future__ import annotations

from typing import Any

import numba
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

kernel = numba.njit(cache=True, nogil=True, error_model="numpy")

_F64 = ir.DoubleType()
_I32 = ir.IntType(32)
_PTR = ir.IntType(8).as_pointer()


@intrinsic
def fma(typingctx: Any, x: types.Type, y: types.Type, z: types.Type) -> Any:
    """``x * y + z`` with a single rounding (float64)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context: Any, builder: ir.IRBuilder, signature: Any, args: Any) -> ir.Value:
        fn = builder.module.declare_intrinsic("llvm.fma", [_F64], ir.FunctionType(_F64, [_F64] * 3))
        return builder.call(fn, args)

    return sig, codegen


def _c_call(kinds: str) -> Any:
    """An intrinsic ``(address, *args) -> int32`` calling a C function whose parameters are
    ``kinds``: ``i`` int (passed as int64, truncated to int32), ``p`` pointer (passed as an int64
    address), ``d`` double."""
    llvm = {"i": _I32, "p": _PTR, "d": _F64}
    numba_types = {"i": types.int64, "p": types.int64, "d": types.float64}

    def typer(typingctx: Any, address: types.Type, args: types.BaseTuple) -> Any:
        if len(args) != len(kinds):
            raise TypeError(f"C call expects {len(kinds)} arguments, got {len(args)}")
        sig = types.int32(address, args)

        def codegen(context: Any, builder: ir.IRBuilder, signature: Any, values: Any) -> ir.Value:
            fnty = ir.FunctionType(_I32, [llvm[k] for k in kinds])
            target = context.cast(builder, values[0], signature.args[0], types.int64)
            fn = builder.inttoptr(target, fnty.as_pointer())
            converted = []
            for i, kind in enumerate(kinds):
                value = builder.extract_value(values[1], i)
                value = context.cast(builder, value, args[i], numba_types[kind])
                if kind == "i":
                    value = builder.trunc(value, _I32)
                elif kind == "p":
                    value = builder.inttoptr(value, _PTR)
                converted.append(value)
            return builder.call(fn, converted)

        return sig, codegen

    return intrinsic(typer)


#: ``TA_RSI``-like: ``(start, end, in[], period, &outBeg, &outNb, out[])``.
call_c_real = _c_call("iipippp")
#: ``TA_ATR``-like: ``(start, end, high[], low[], close[], period, &outBeg, &outNb, out[])``.
call_c_hlc = _c_call("iipppippp")
#: ``TA_BBANDS``: ``(start, end, in[], period, devUp, devDn, maType, &beg, &nb, up[], mid[], low[])``.
call_c_bbands = _c_call("iipiddippppp")
