# Plugs the holes among the live objects, so that a datagram's recvfrom
# buffer is found where the free space starts.
#
# Why (py/gc.c, gc_alloc): the allocator looks for a run of free blocks from
# the lowest free one up, and only a one-block allocation moves that starting
# point. Start-up leaves holes among the live objects (modules, the relay:
# some 160 holes, 970 blocks on the board), and after every collection each
# recvfrom buffer (93 blocks for 1473 bytes) is looked for past them again,
# until the datagrams' one-block objects have filled them. Plugged, the search
# starts where the free space does, as in a bare loop.
#
# The plugs are tuples of zeros: one allocation each, of 4 words a block, the
# first 2 the tuple's header (the allocator's block is 4 words on every port).
# id() of an object is its address.
from micropython import const

_EDGE = const(256)  # blocks: the free run where plugging stops (4 KB on the board)
_LINK = const(32)  # plugs per list of the chain: a short list keeps the collector's stack short
_ZERO = (0,)
_NONE = [None]  # _NONE * _LINK: a new link, with no temporary list


def plug(chain=None):
    """Fill every free run below the first one of _EDGE blocks with plugs (at
    most one per power of two in a run's length) and return them, with
    `chain`'s, in a chain of lists (slot 0 of each: the previous one). Call it
    right after gc.collect(): what it tried and did not keep is garbage above
    the edge, and nothing it leaves behind is garbage below it."""
    edge = id(_ZERO * (4 * _EDGE - 2))  # lands on the first free run of _EDGE blocks
    if chain is None:
        chain = _NONE * _LINK
    held = _held(chain)
    blocks = _EDGE // 2
    while blocks:
        while True:
            t = _ZERO * (4 * blocks - 2)  # `blocks` blocks: it lands on the lowest run that long
            if id(t) > edge:
                break  # no run that long below the edge
            if held == _LINK:
                link = _NONE * _LINK
                link[0] = chain
                chain = link
                held = 1
            chain[held] = t
            held += 1
        blocks >>= 1
    return chain


def _held(link):
    """Slots in use in a link (slot 0, the previous link, counts)."""
    n = 1
    while n < _LINK and link[n] is not None:
        n += 1
    return n


def count(chain):
    """How many plugs a chain holds."""
    n = 0
    while chain is not None:
        n += _held(chain) - 1
        chain = chain[0]
    return n
