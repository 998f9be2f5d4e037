"""ImageReader against the simulated NDStdArrays plugin (CaChannel/demo/adsim.db)."""
from __future__ import annotations

import numpy as np
import pytest

from CaChannel import ca
from CaChannel.areadetector import ImageReader
from CaChannel.demo.adsim import SimDetector

from mon_helpers import wait_for


@pytest.fixture
def det(mon_ioc):
    with SimDetector("sim:", width=64, height=48, data_type="UInt16") as d:
        d.write(1)
        yield d


def next_image(reader, uid, timeout=5.0):
    """The image with UniqueId ``uid`` (earlier ones are skipped)."""
    while True:
        image = reader.get(timeout)
        assert image is not None, "no image with UniqueId %d" % uid
        if image.unique_id >= uid:
            assert image.unique_id == uid
            return image


def expected(det, uid, data_type, n):
    mod = det.modulus(data_type)
    return (np.arange(n) + uid) % mod


def test_mono_uint16_is_two_bytes_a_pixel(det):
    det.configure(width=64, height=48, data_type="UInt16", color="Mono")
    with ImageReader("sim:", policy="all") as reader:
        assert reader.monitor.request_type == ca.DBR_TIME_ENUM
        # the subscription's first frame is taken before the next is written:
        # unsent when the next one is posted, the server may coalesce events
        # out of order across the records (CA's limit, as below): a CI run saw
        # UniqueId 2 with ArrayCounter 1
        next_image(reader, det.uid)
        det.write(1)
        image = next_image(reader, det.uid)
        assert image.array.shape == (48, 64) and image.array.dtype == np.uint16
        assert image.array.itemsize == 2
        assert image.color_mode == "Mono" and image.data_type == "UInt16"
        assert image.dims == (64, 48)
        np.testing.assert_array_equal(image.array.ravel(), expected(det, det.uid, "UInt16", 64 * 48))
        assert image.timestamp > 1e9 and image.counter == det.written


def test_shape_and_type_follow_the_detector(det):
    with ImageReader("sim:", policy="all") as reader:
        # the subscription's first frame is taken before the detector changes:
        # unsent when the next frame is posted, the server may coalesce the two
        # under the first one's metadata (CA's limit, see the module docstring)
        next_image(reader, det.uid)
        cases = [("RGB1", "UInt8", (20, 30, 3)), ("RGB2", "Int16", (20, 3, 30)),
                 ("RGB3", "Int8", (3, 20, 30)), ("Mono", "Float32", (20, 30)),
                 ("Mono", "UInt32", (20, 30)), ("Mono", "UInt16", (100, 120))]
        for color, data_type, shape in cases:
            w, h = (120, 100) if shape == (100, 120) else (30, 20)
            det.configure(width=w, height=h, color=color, data_type=data_type)
            det.write(1)
            image = next_image(reader, det.uid)
            assert image.array.shape == shape, (color, data_type)
            assert image.array.dtype == np.dtype(data_type.lower()), (color, data_type)
            assert image.color_mode == color and image.data_type == data_type
            want = expected(det, det.uid, data_type, int(np.prod(shape)))
            np.testing.assert_array_equal(image.array.ravel(), want.astype(image.array.dtype))
        assert reader.monitor.request_type == ca.DBR_TIME_ENUM
        st = reader.stats
        assert st.received == st.delivered + st.dropped + st.skipped + st.pending


def test_lost_frames_are_reported(det):
    det.configure(width=32, height=32, data_type="UInt16", color="Mono")
    with ImageReader("sim:", policy="all", buffers=8) as reader:
        next_image(reader, det.uid)  # the subscription's first frame, as above
        det.write(1)
        next_image(reader, det.uid)
        lost_before = reader.stats.lost
        det.skip(5)            # the detector made 5 frames we never get
        det.write(1)
        next_image(reader, det.uid)
        assert reader.stats.lost == lost_before + 5


def test_slow_consumer_counts_add_up(det):
    det.configure(width=32, height=32, data_type="UInt16", color="Mono")
    with ImageReader("sim:", policy="latest", buffers=3) as reader:
        # the subscription's first frame first, as above (a CI run of the cffi
        # pass saw it coalesced with UniqueId 2 and waited for 2 in vain)
        next_image(reader, det.uid)
        det.write(1)
        first = next_image(reader, det.uid)    # held: the consumer is busy
        received = reader.stats.received
        for _ in range(10):
            det.write(1)
            wait_for(lambda: reader.stats.received == received + 1, what="frame")
            received += 1
        st = reader.stats
        assert st.pending == 1 and st.dropped >= 9
        newest = reader.get(2)
        assert newest.unique_id == det.uid
        assert first.frame.released
        st = reader.stats
        assert st.lost == 0
        assert st.received == st.delivered + st.dropped + st.skipped + st.pending


def test_missing_plugin_times_out(mon_ioc):
    with pytest.raises(TimeoutError):
        ImageReader("nosuch:", timeout=0.3)


def test_ioc_restart_during_image_reader(restart_ioc):
    """The detector's IOC restarts under a running ImageReader: the outage is
    reported, and the restarted detector's images (new size and type, its
    UniqueId counting from 1 again) come out shaped by their own metadata.

    libca finds the restarted IOC only after its disconnect governor (~10 s).
    Frames are paced (each one read before the next is written): unpaced, the
    server may coalesce them under load, which is CA's limit, not the reader's.
    """
    prefix = "rst:image1:"
    with ImageReader(prefix, policy="all", timeout=10) as reader:
        with SimDetector(prefix, width=32, height=16, data_type="UInt16") as det:
            for uid in (1, 2, 3):
                det.write(1)
                image = next_image(reader, uid)
        assert image.array.shape == (16, 32) and image.array.dtype == np.uint16
        assert image.array[0, 0] == 3
        reader.release()
        before = reader.monitor
        restart_ioc.kill()
        wait_for(lambda: not before.connected, timeout=10, what="the disconnection")
        assert before.disconnects == 1 and before.outages[-1][1] is None
        restart_ioc.start()
        wait_for(lambda: before.connected, timeout=40, what="the reconnection")
        down, up = before.outages[-1]
        assert up is not None and up > down
        with SimDetector(prefix, width=24, height=8, data_type="UInt8", timeout=20) as det:
            for uid in (1, 2):
                det.write(1)
                while True:
                    image = reader.get(20)
                    assert image is not None, "no image %d after the restart" % uid
                    if image.array.shape == (8, 24) and image.unique_id == uid:
                        break
        assert image.array.dtype == np.uint8 and image.array[0, 0] == 2
        assert reader.monitor.request_type == ca.DBR_TIME_CHAR   # re-subscribed for UInt8
        st = reader.stats
        assert st.received == st.delivered + st.dropped + st.skipped + st.pending
        assert st.lost == 0, "the restart's UniqueId reset is not a loss"
