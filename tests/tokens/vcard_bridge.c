/* vcard_bridge.c: a virtual CAC card for the card token tests. libcacard
 * emulates the card over the certificates and keys of an NSS database; this
 * program connects it to vsmartcard's vpcd reader driver (loaded by pcscd),
 * which waits on a TCP port for a virtual card.
 *
 * vpcd's protocol: every message is a 2-byte big-endian length and that many
 * bytes. A 1-byte message from the reader is a control: 0 power off, 1 power
 * on, 2 reset (no answer to these), 4 "send your ATR" (answered with the
 * ATR). Longer messages are command APDUs, answered with the response APDU.
 * The card is "in the reader" while the TCP connection is open.
 *
 * Pulling the card: while the file named by --present does not exist the
 * bridge stays disconnected (the reader sees no card); when it appears again
 * the bridge reconnects (the card is inserted again, logged out, as a real
 * card would be). Without --present, SIGUSR1 pulls and SIGUSR2 inserts.
 *
 * usage: vcard_bridge --db DIR --port PORT [--host ADDR] [--present FILE]
 *                     [--reader NAME] NICKNAME...
 * Prints "inserted" / "pulled" lines on stdout as the card comes and goes.
 * The PIN is the NSS database's password: it only ever reaches the card in a
 * VERIFY APDU and is never printed. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libcacard.h>

#define CTRL_OFF 0
#define CTRL_ON 1
#define CTRL_RESET 2
#define CTRL_ATR 4
#define MSG_MAX 0xffff

struct bridge {
    const char *host;            /* where vpcd listens */
    int port;
    const char *present;         /* control file, or NULL (signals) */
    VReader *reader;             /* libcacard's reader holding our card */
    unsigned char atr[64];       /* the card's ATR, read once at start */
    int atrlen;
    int fd;                      /* connection to vpcd, -1 while pulled */
};

static volatile sig_atomic_t stop;     /* SIGTERM/SIGINT: leave */
static volatile sig_atomic_t pulled;   /* SIGUSR1 pulls, SIGUSR2 inserts */

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        pulled = 1;
    else if (sig == SIGUSR2)
        pulled = 0;
    else
        stop = 1;
}

static int card_wanted(const struct bridge *b)
{
    if (b->present != NULL)
        return access(b->present, F_OK) == 0;
    return !pulled;
}

/* Without TCP_QUICKACK each answer waits for the peer's delayed ACK. */
static void quickack(int fd)
{
    int on = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on));
}

static int read_full(int fd, unsigned char *buf, size_t len)
{
    size_t got = 0;
    ssize_t n;

    while (got < len) {
        n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    quickack(fd);
    return 0;
}

static int send_msg(int fd, const unsigned char *data, size_t len)
{
    unsigned char buf[2 + MSG_MAX];
    size_t off = 0;
    ssize_t n;

    if (len > MSG_MAX)
        return -1;
    buf[0] = (unsigned char)(len >> 8);
    buf[1] = (unsigned char)(len & 0xff);
    memcpy(buf + 2, data, len);
    while (off < len + 2) {
        n = write(fd, buf + off, len + 2 - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

static int connect_vpcd(struct bridge *b)
{
    struct sockaddr_in sa;
    int fd, on = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)b->port);
    if (inet_pton(AF_INET, b->host, &sa.sin_addr) != 1)
        return -1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One control message from the reader. Returns -1 when the link broke. */
static int handle_ctrl(struct bridge *b, unsigned char ctrl)
{
    unsigned char atr[64];
    int atrlen = (int)sizeof(atr);

    switch (ctrl) {
    case CTRL_OFF:
        vreader_power_off(b->reader);
        return 0;
    case CTRL_ON:
        vreader_power_on(b->reader, atr, &atrlen);
        return 0;
    case CTRL_RESET:
        vreader_power_off(b->reader);
        vreader_power_on(b->reader, atr, &atrlen);
        return 0;
    case CTRL_ATR:
        return send_msg(b->fd, b->atr, (size_t)b->atrlen);
    default:
        fprintf(stderr, "vcard_bridge: unknown control byte %u\n", ctrl);
        return 0;
    }
}

/* One message from the reader. Returns -1 when the link broke. */
static int handle_msg(struct bridge *b)
{
    static unsigned char in[MSG_MAX], out[MSG_MAX];
    unsigned char hdr[2];
    size_t len;
    int outlen = (int)sizeof(out);

    if (read_full(b->fd, hdr, 2) != 0)
        return -1;
    len = ((size_t)hdr[0] << 8) | hdr[1];
    if (len == 0)
        return 0;
    if (read_full(b->fd, in, len) != 0)
        return -1;
    if (len == 1)
        return handle_ctrl(b, in[0]);
    if (vreader_xfr_bytes(b->reader, in, (int)len, out, &outlen)
        != VREADER_OK) {
        /* No card behind the reader: "no precise diagnosis". */
        out[0] = 0x6f;
        out[1] = 0x00;
        outlen = 2;
    }
    return send_msg(b->fd, out, (size_t)outlen);
}

static void set_inserted(struct bridge *b, int fd)
{
    b->fd = fd;
    printf("inserted\n");
    fflush(stdout);
}

static void set_pulled(struct bridge *b)
{
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
    vreader_power_off(b->reader);
    printf("pulled\n");
    fflush(stdout);
}

static void run(struct bridge *b)
{
    struct pollfd pfd;
    int fd, r;

    while (!stop) {
        if (b->fd < 0) {
            if (card_wanted(b) && (fd = connect_vpcd(b)) >= 0) {
                set_inserted(b, fd);
                continue;
            }
            poll(NULL, 0, 50);
            continue;
        }
        if (!card_wanted(b)) {
            set_pulled(b);
            continue;
        }
        pfd.fd = b->fd;
        pfd.events = POLLIN;
        r = poll(&pfd, 1, 50);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0 && handle_msg(b) != 0) {
            /* vpcd went away (pcscd stopped): try again later. */
            close(b->fd);
            b->fd = -1;
            vreader_power_off(b->reader);
        }
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: vcard_bridge --db DIR --port PORT [--host ADDR] "
            "[--present FILE] [--reader NAME] NICKNAME...\n");
    return 2;
}

/* The options string of vcard_emul_options: one soft card in one reader. */
static char *emul_args(const char *db, const char *reader, char **nicks,
                       int n)
{
    size_t len = strlen(db) + strlen(reader) + 64;
    char *s;
    int i;

    for (i = 0; i < n; i++)
        len += strlen(nicks[i]) + 1;
    s = malloc(len);
    if (s == NULL)
        return NULL;
    snprintf(s, len, "db=\"sql:%s\" use_hw=no soft=(,%s,CAC,,", db, reader);
    for (i = 0; i < n; i++) {
        strcat(s, nicks[i]);
        strcat(s, i + 1 < n ? "," : ")");
    }
    return s;
}

int main(int argc, char **argv)
{
    struct bridge b = { "127.0.0.1", 35963, NULL, NULL, { 0 }, 0, -1 };
    const char *db = NULL, *reader = "p11id-card";
    struct sigaction sa;
    char *args;
    int i;

    for (i = 1; i < argc && argv[i][0] == '-'; i += 2) {
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--db") == 0)
            db = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0)
            b.port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--host") == 0)
            b.host = argv[i + 1];
        else if (strcmp(argv[i], "--present") == 0)
            b.present = argv[i + 1];
        else if (strcmp(argv[i], "--reader") == 0)
            reader = argv[i + 1];
        else
            return usage();
    }
    if (db == NULL || i >= argc || b.port <= 0 || b.port > 65535)
        return usage();
    args = emul_args(db, reader, argv + i, argc - i);
    if (args == NULL)
        return 1;
    if (vcard_emul_init(vcard_emul_options(args)) != VCARD_EMUL_OK) {
        fprintf(stderr, "vcard_bridge: libcacard could not make a card from "
                "%s (nicknames found there?)\n", db);
        free(args);
        return 1;
    }
    free(args);
    b.reader = vreader_get_reader_by_name(reader);
    b.atrlen = (int)sizeof(b.atr);
    if (b.reader == NULL
        || vreader_power_on(b.reader, b.atr, &b.atrlen) != VREADER_OK) {
        fprintf(stderr, "vcard_bridge: no card in reader %s\n", reader);
        return 1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    run(&b);
    if (b.fd >= 0)
        close(b.fd);
    vreader_free(b.reader);
    vcard_emul_finalize();
    return 0;
}
