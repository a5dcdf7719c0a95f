"""numba settings shared by every compiled kernel in the library.

``cache=True`` keeps machine code in the ``__pycache__`` next to each module,
so a chapter does not recompile the engine every time its kernel starts. When
that directory is not writable (a tree owned by another user) numba raises at
import; then compile in each process instead, or honour ``NUMBA_CACHE_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path


def can_cache(package_dir: Path = Path(__file__).parent) -> bool:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return True
    for d in [package_dir, *package_dir.rglob("*")]:
        if d.is_dir() and d.name != "__pycache__" and not d.name.startswith("."):
            target = d / "__pycache__"
            if not os.access(target if target.exists() else d, os.W_OK):
                return False
    return True


CACHE = can_cache()


def _grid_intrinsic():
    from numba import types
    from numba.core import cgutils
    from numba.core.imputils import impl_ret_borrowed
    from numba.extending import intrinsic

    @intrinsic
    def grid(typingctx, arr, at, rows, cols):
        """``arr[at:at + rows * cols]`` as a rows x cols C-contiguous view of ``arr`` (1-d, C-contiguous), built in
        place: numba's ``reshape`` calls out to a C helper on every use, which in a kernel called millions of
        times cost more than the kernel's work."""
        out_ty = types.Array(arr.dtype, 2, "C")

        def codegen(context, builder, signature, args):
            src = context.make_array(signature.args[0])(context, builder, args[0])
            out = context.make_array(out_ty)(context, builder)
            size = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(arr.dtype)))
            context.populate_array(out, data=builder.gep(src.data, [args[1]]),
                                   shape=cgutils.pack_array(builder, [args[2], args[3]]),
                                   strides=cgutils.pack_array(builder, [builder.mul(args[3], size), size]),
                                   itemsize=size, meminfo=src.meminfo, parent=None)
            return impl_ret_borrowed(context, builder, out_ty, out._getvalue())  # a view holds its base alive

        return out_ty(arr, at, rows, cols), codegen

    return grid


#: a 2-d view of part of a 1-d array, for compiled code (see the function's doc)
grid = _grid_intrinsic()


def _retype_intrinsics():
    from numba import types
    from numba.core import cgutils
    from numba.core.imputils import impl_ret_borrowed
    from numba.extending import intrinsic

    def _view(context, builder, src_ty, src_val, out_ty, start, shape, itemsize):
        src = context.make_array(src_ty)(context, builder, src_val)
        out = context.make_array(out_ty)(context, builder)
        ptr = builder.bitcast(builder.gep(src.data, [start]), context.get_data_type(out_ty.dtype).as_pointer())
        size = context.get_constant(types.intp, itemsize)
        strides = [size] if len(shape) == 1 else [builder.mul(shape[1], size), size]
        context.populate_array(out, data=ptr, shape=cgutils.pack_array(builder, shape),
                               strides=cgutils.pack_array(builder, strides), itemsize=size, meminfo=src.meminfo,
                               parent=None)
        return impl_ret_borrowed(context, builder, out_ty, out._getvalue())

    @intrinsic
    def grid16(typingctx, arr, at, rows, cols):
        """The memory of ``arr`` (1-d, C-contiguous, 8-byte items) from element ``at`` on, as a rows x cols
        C-contiguous int16 array: rows of int16 fields inside a buffer of int64 words. The caller sizes the part
        (rows * cols int16 in it)."""
        out_ty = types.Array(types.int16, 2, "C")

        def codegen(context, builder, signature, args):
            return _view(context, builder, signature.args[0], args[0], out_ty, args[1], [args[2], args[3]], 2)

        return out_ty(arr, at, rows, cols), codegen

    def row_as(dtype, doc):
        """An intrinsic viewing a row (1-d, C-contiguous) as ``dtype`` items: its bytes, len(row) * its item size of
        them, in items of ``dtype``'s size (the last partial one left out)."""
        @intrinsic
        def view(typingctx, row):
            out_ty = types.Array(dtype, 1, "C")
            num, den = row.dtype.bitwidth // 8, dtype.bitwidth // 8

            def codegen(context, builder, signature, args):
                src = context.make_array(signature.args[0])(context, builder, args[0])
                size = builder.mul(builder.extract_value(src.shape, 0), context.get_constant(types.intp, num))
                n = builder.sdiv(size, context.get_constant(types.intp, den))
                return _view(context, builder, signature.args[0], args[0], out_ty,
                             context.get_constant(types.intp, 0), [n], den)

            return out_ty(row), codegen

        view.__doc__ = doc
        return view

    words = row_as(types.uint64, """An int16 row (starting on an 8-byte boundary) as uint64 words, four fields each,
        little-endian: its first len(row) // 4 * 4 fields in one load per four instead of one per field.""")
    row_bytes = row_as(types.uint8, """A row as its bytes: uint8, len(row) * its item size of them.""")

    @intrinsic
    def grid_bytes(typingctx, arr):
        """A 2-d C-contiguous array as its bytes: uint8, one row per row, each row's items' bytes in order."""
        out_ty = types.Array(types.uint8, 2, "C")
        itemsize = arr.dtype.bitwidth // 8

        def codegen(context, builder, signature, args):
            src = context.make_array(signature.args[0])(context, builder, args[0])
            rows, cols = cgutils.unpack_tuple(builder, src.shape, 2)
            cols = builder.mul(cols, context.get_constant(types.intp, itemsize))
            return _view(context, builder, signature.args[0], args[0], out_ty, context.get_constant(types.intp, 0),
                         [rows, cols], 1)

        return out_ty(arr), codegen

    return grid16, words, row_bytes, grid_bytes


#: views of a buffer's memory as another type, for compiled code (see each function's doc)
grid16, words, row_bytes, grid_bytes = _retype_intrinsics()


def _prefetch_intrinsic():
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic
    from llvmlite import ir

    @intrinsic
    def prefetch(typingctx, arr, idx):
        """Ask the CPU to bring ``arr[idx]`` (1-d, C-contiguous) into its caches and go on (LLVM's
        ``llvm.prefetch``, read, high locality): a search that looks up a few fingerprints in a table much larger
        than its caches issues all their loads at once instead of waiting for each miss in turn."""
        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            ptr = builder.bitcast(cgutils.gep(builder, ary.data, args[1]), ir.IntType(8).as_pointer())
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [ptr.type, *[ir.IntType(32)] * 3]), "llvm.prefetch.p0i8")
            i32 = ir.IntType(32)
            builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.none(arr, idx), codegen

    return prefetch


#: a hint that an array element is about to be read (see the function's doc)
prefetch = _prefetch_intrinsic()


def _inline_without_copies() -> bool:
    """Make numba's ``inline="always"`` skip two deep copies it does not need; True if applied.

    ``InlineWorker.inline_function`` builds the callee's IR afresh at every call site, then ``inline_ir`` deep-copies
    that IR twice, block by block, and each block's copy copies the whole scope again (numba/numba#8989, fixed the
    same way in NVIDIA/numba-cuda#689). The replay loop inlines every handler and the helpers they share: those
    copies were most of its cold compile. Inside ``inline_function`` nothing else holds the fresh IR, so a block
    stands for its copy there; every other caller of ``inline_ir`` (overloads inlined from a cached IR) still gets
    real copies. Applied only to the numba whose ``inline_function`` reads as expected."""
    import copy
    import inspect
    import threading

    from numba.core import inline_closurecall as icc
    from numba.core import ir

    worker = icc.InlineWorker
    try:
        body = inspect.getsource(worker.inline_function)
    except (OSError, TypeError):
        return False
    if "callee_ir = self.run_untyped_passes(function)" not in body or getattr(worker, "_fraglife_fresh", False):
        return False
    fresh = threading.local()

    class _Copy:  # the module ``copy`` as inline_closurecall sees it
        def __getattr__(self, name):
            return getattr(copy, name)

        @staticmethod
        def deepcopy(x, memo=None):
            if isinstance(x, ir.Block) and getattr(fresh, "on", False):
                return x
            return copy.deepcopy(x, memo)

    def inline_function(self, caller_ir, block, i, function, arg_typs=None):
        callee_ir = self.run_untyped_passes(function)  # fresh: its own blocks and scope
        prev = getattr(fresh, "on", False)
        fresh.on = True
        try:
            return self.inline_ir(caller_ir, block, i, callee_ir, function.__code__.co_freevars, arg_typs=arg_typs)
        finally:
            fresh.on = prev

    icc.copy = _Copy()
    worker.inline_function = inline_function
    worker._fraglife_fresh = True
    return True


INLINE_WITHOUT_COPIES = _inline_without_copies()
