#ifndef FARM_CFFMPEG_SHIM_H
#define FARM_CFFMPEG_SHIM_H

#include <errno.h>
#include <malloc.h>
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/opt.h>
#include <libavutil/imgutils.h>
#include <libavutil/channel_layout.h>
#include <libavutil/display.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/log.h>
#include <libavutil/hwcontext.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersrc.h>
#include <libavfilter/buffersink.h>
#include <libswscale/swscale.h>
#include <libswresample/swresample.h>

// Macros that Swift cannot import, re-exported as functions (Swift imports no function-like or compound-literal macro).
static inline int farm_averror(int e) { return AVERROR(e); }
static inline int farm_averror_eof(void) { return AVERROR_EOF; }
static inline int farm_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int farm_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
static inline int64_t farm_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline AVRational farm_time_base_q(void) { return AV_TIME_BASE_Q; }
static inline void farm_av_log_quiet(void) { av_log_set_level(AV_LOG_ERROR); }
static inline void farm_av_log_set_level(int level) { av_log_set_level(level); }

/// glibc fills every block it hands out with `byte ^ 0xFF` and every block it takes back with `byte`: memory a
/// library reads before writing then holds the same bytes whatever the process did before (M_PERTURB).
static inline int farm_fill_allocations(int byte) { return mallopt(M_PERTURB, byte); }

/// Plane pointers of a frame, without exposing the 8-tuples to Swift.
static inline uint8_t *farm_frame_data(const AVFrame *frame, int plane) { return frame->data[plane]; }
static inline int farm_frame_linesize(const AVFrame *frame, int plane) { return frame->linesize[plane]; }

#endif
