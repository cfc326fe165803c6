// shard_jump_fcontext: Boost.Context's jump_fcontext for x86-64 System V, with
// the same frame layout and contract, ending in `ret` instead of an indirect
// `jmp`. fiber_switch.h says why.
//
//   transfer_t shard_jump_fcontext(fcontext_t to, void* data)
//
// Saves the caller's callee-saved state in a frame on its own stack, makes `to`
// (a frame made here or by make_fcontext) the stack, restores it, and returns
// there with transfer_t{the caller's frame, data} in rax:rdx (and in rdi:rsi,
// where a fresh context's entry function takes it).
//
// Frame, from its address up: mxcsr (4 bytes), x87 control word (4 bytes),
// r12, r13, r14, r15, rbx, rbp, return address.
//
// This file carries no CET property note on purpose: without it the linker
// never marks the program shadow-stack compatible, and a `ret` into another
// stack is exactly what a shadow stack would stop.

// x86-64 System V with 64-bit pointers on Linux only, as fiber_switch.h
// declares it; elsewhere this file assembles to nothing.
#if defined(__x86_64__) && defined(__linux__) && !defined(__ILP32__)

    .text
    .globl  shard_jump_fcontext
    .type   shard_jump_fcontext, @function
    .align  16
shard_jump_fcontext:
    leaq    -0x38(%rsp), %rsp
    stmxcsr (%rsp)
    fnstcw  0x4(%rsp)
    movq    %r12, 0x8(%rsp)
    movq    %r13, 0x10(%rsp)
    movq    %r14, 0x18(%rsp)
    movq    %r15, 0x20(%rsp)
    movq    %rbx, 0x28(%rsp)
    movq    %rbp, 0x30(%rsp)

    movq    %rsp, %rax          // transfer_t.fctx: where the caller's frame is
    movq    %rdi, %rsp          // the other stack

    ldmxcsr (%rsp)
    fldcw   0x4(%rsp)
    movq    0x8(%rsp), %r12
    movq    0x10(%rsp), %r13
    movq    0x18(%rsp), %r14
    movq    0x20(%rsp), %r15
    movq    0x28(%rsp), %rbx
    movq    0x30(%rsp), %rbp
    leaq    0x38(%rsp), %rsp    // leaves the return address on top

    movq    %rsi, %rdx          // transfer_t.data
    movq    %rax, %rdi          // a fresh context's entry takes transfer_t in rdi:rsi
    ret
    .size   shard_jump_fcontext, .-shard_jump_fcontext

#endif

    .section .note.GNU-stack, "", %progbits
