"""cffi (ABI mode) declarations of the libca functions the backend calls.

ABI mode needs no compiler: the declarations below are matched against the
shared library at run time. Only what ``cadef.h`` makes part of the ABI is
declared; DBR buffers are handled as raw bytes with the layout tables of
``CaChannel._common``.
"""
from __future__ import annotations

import sys

from cffi import FFI

from CaChannel import _libca

ffi = FFI()
ffi.cdef("""
typedef void *chid;
typedef void *evid;
typedef long chtype;
typedef double ca_real;
typedef unsigned CA_SYNC_GID;
struct ca_client_context;

struct connection_handler_args { chid chid; long op; };
typedef void caCh(struct connection_handler_args args);

/* caar is a struct of two one-bit fields; it travels as one unsigned word */
struct access_rights_handler_args { chid chid; unsigned ar; };
typedef void caArh(struct access_rights_handler_args args);

struct event_handler_args {
    void *usr; chid chid; long type; long count; const void *dbr; int status;
};
typedef void caEventCallBackFunc(struct event_handler_args);

struct exception_handler_args {
    void *usr; chid chid; long type; long count; void *addr; long stat; long op;
    const char *ctx; const char *pFile; unsigned lineNo;
};
typedef void caExceptionHandler(struct exception_handler_args);

/* the va_list of a printf handler is passed on to vsnprintf untouched */
typedef int caPrintfFunc(const char *pformat, void *args);

int ca_context_create(int select);
void ca_context_destroy(void);
int ca_attach_context(struct ca_client_context *context);
void ca_detach_context(void);
struct ca_client_context *ca_current_context(void);
int ca_client_status(unsigned level);
int ca_context_status(struct ca_client_context *context, unsigned level);
int ca_preemtive_callback_is_enabled(void);

int ca_create_channel(const char *pChanName, caCh *pConnStateCallback,
                      void *pUserPrivate, unsigned priority, chid *pChanID);
int ca_clear_channel(chid chanId);
int ca_change_connection_event(chid chan, caCh *pfunc);
int ca_replace_access_rights_event(chid chan, caArh *pfunc);
int ca_add_exception_event(caExceptionHandler *pfunc, void *pArg);
int ca_replace_printf_handler(caPrintfFunc *ca_printf_func);

short ca_field_type(chid chan);
unsigned long ca_element_count(chid chan);
const char *ca_name(chid chan);
void *ca_puser(chid chan);
unsigned ca_read_access(chid chan);
unsigned ca_write_access(chid chan);
int ca_state(chid chan);
unsigned ca_get_host_name(chid pChan, char *pBuf, unsigned bufLength);

int ca_array_put(chtype type, unsigned long count, chid chanId, const void *pValue);
int ca_array_put_callback(chtype type, unsigned long count, chid chanId,
                          const void *pValue, caEventCallBackFunc *pFunc, void *pArg);
int ca_array_get(chtype type, unsigned long count, chid chanId, void *pValue);
int ca_array_get_callback(chtype type, unsigned long count, chid chanId,
                          caEventCallBackFunc *pFunc, void *pArg);
int ca_create_subscription(chtype type, unsigned long count, chid chanId, long mask,
                           caEventCallBackFunc *pFunc, void *pArg, evid *pEventID);
int ca_clear_subscription(evid eventID);

int ca_pend_event(ca_real timeout);
int ca_pend_io(ca_real timeout);
int ca_pend(ca_real timeout, int early);
int ca_test_io(void);
int ca_flush_io(void);

const char *ca_message(long ca_status);
const char *ca_version(void);

int ca_sg_create(CA_SYNC_GID *pgid);
int ca_sg_delete(const CA_SYNC_GID gid);
int ca_sg_block(const CA_SYNC_GID gid, ca_real timeout);
int ca_sg_test(const CA_SYNC_GID gid);
int ca_sg_reset(const CA_SYNC_GID gid);
int ca_sg_array_get(const CA_SYNC_GID gid, chtype type, unsigned long count,
                    chid chan, void *pValue);
int ca_sg_array_put(const CA_SYNC_GID gid, chtype type, unsigned long count,
                    chid chan, const void *pValue);

int vsnprintf(char *str, size_t size, const char *format, void *ap);

void *epicsThreadGetIdSelf(void);

/* db_access.h: the DBR struct layouts, checked against CaChannel._common at import */
extern const unsigned short dbr_size[39];
extern const unsigned short dbr_value_size[39];
extern const unsigned short dbr_value_offset[39];
""")

lib = ffi.dlopen(_libca.load())

#: libca's enum channel_state: connected
CS_CONN = 2

# libCom's epicsThreadGetIdSelf, called once in a child after fork, where
# libCom's warning about fork is silenced (see CaChannel._common._quiet_fd2).
_com = ffi.dlopen(_libca.library_paths()[0])
thread_init = _com.epicsThreadGetIdSelf

# vsnprintf (from the C runtime) formats libca's diagnostics for a Python
# printf handler; without it the format string is passed on unformatted.
try:
    vsnprintf = ffi.dlopen(None).vsnprintf
except (OSError, AttributeError, TypeError):
    vsnprintf = None
