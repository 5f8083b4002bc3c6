// Package shm owns reef's on-disk and in-shared-memory form of a sealed row block,
// and the manifest that marks a leaf's shared-memory directory as a clean handoff.
//
// A sealed block is one file, <id>.blk (the id as 16 hex digits), in the leaf's shm
// directory (normally on tmpfs, /dev/shm/reef/<leaf>/). OpenBlock maps the file
// read-only and builds the block's Arrow arrays straight over the mapping, without
// copying a byte of data: opening reads the header and the small validity, offset
// and index buffers, never the values.
// The disk copy of a block is the same bytes in the snappy framing format
// (<id>.blk.sz); ReadCompressed and ReadBlockFile read a file into the heap instead,
// and Writer.CopyCompressed makes the disk copy of a block file without decoding it.
// ExportArrowIPC writes a block as a standard Arrow IPC file for other tools.
//
// For a leaf's starts: AttachBlockDeferred (or an Attacher, for the many blocks of
// one directory) maps a block a manifest lists with only the checks that read no
// data (a few system calls per block) and builds no array yet, returning a verify
// function that must pass before the block is read; OpenBlockVerified checks a
// block in full, checksum included, over one mapping.
//
// The manifest (file MANIFEST) lists the block files of a handoff. It is written
// last, by rename, so its presence is the handoff's "valid bit" (layout below).
// docs/shm-format.md describes all of it, with the handoff sequence.
//
// The package knows nothing of HTTP, leaves or queries: it stores and maps blocks and
// reads and writes manifests. It never decides which blocks to keep.
//
// # Block file layout, version 1
//
// All integers are little-endian; offsets count from the start of the file. F is the
// file length, H the header length.
//
//	offset  size  field
//	0       8     magic "REEF-BLK"
//	8       4     u32 layout version (1)
//	12      4     u32 header length H; bytes [0,H) are the header
//	16      8     u64 file length F
//	24      8     u64 block id
//	32      8     i64 min time (smallest value of column "time")
//	40      8     i64 max time
//	48      4     u32 rows (1..65536)
//	52      4     u32 column count C
//	56      4     u32 table name length T
//	60      4     reserved, 0
//	64      T     table name
//	64+T    …     C column records, each followed by its array nodes (below)
//	H-4     4     u32 crc32c (Castagnoli) of bytes [0,H-4): the header checksum
//	H       …     zero padding to a multiple of 64
//	…       …     buffers, each starting at a multiple of 64, zero padding between
//	F-8     4     u32 crc32c of bytes [0,F-8): the file checksum
//	F-4     4     trailer magic "REND"
//
// Column record:
//
//	size  field
//	2     u16 name length N
//	N     name
//	1     u8 logical type (block.Type: 1 int, 2 float, 3 string, 4 set)
//	1     u8 flags: bit 0 = the stats have a min/max
//	2     reserved, 0
//	4     u32 stats null count (equals the array's null count)
//	8     i64 Base (added to narrowed integers)
//	…     stats min and max, by logical type:
//	        int:    i64 min, i64 max
//	        float:  f64 min, f64 max (IEEE 754 bits)
//	        string: u32 length + bytes (min), u32 length + bytes (max)
//	        set:    nothing
//	…     the column's array node
//
// Array node (one per Arrow array; a nested array's node follows its parent's):
//
//	size  field
//	1     u8 Arrow type id (arrow.Type): 2 uint8, 4 uint16, 6 uint32, 9 int64,
//	      12 float64, 13 string, 25 list, 29 dictionary
//	1     u8 index type id of a dictionary (2, 4 or 6), 0 otherwise
//	2     reserved, 0
//	4     u32 length (elements)
//	4     u32 null count
//	16×B  B buffer references, each u64 offset + u64 length; by type:
//	        uint8/uint16/uint32/int64/float64 (B=2): validity, values
//	        string (B=3):     validity, offsets (int32 × length+1), data
//	        dictionary (B=2): validity, indices
//	        list (B=2):       validity, offsets (int32 × length+1)
//	      then, for a list, the node of its child array, and for a dictionary, the
//	      node of its dictionary (a string array).
//
// A buffer of length 0 is absent and has offset 0; an absent validity buffer means
// the array has no nulls. A present buffer has exactly the length its array needs
// (validity ⌈length/8⌉ bytes, values length × width, offsets (length+1) × 4).
// Offsets start at 0, never decrease, and end at the length of the string data or
// of the list's child. Every dictionary index, null rows included, is below the
// dictionary length (an empty dictionary is allowed only when every row is null).
//
// The physical forms a logical type may take are those of block.Column: int as
// uint8/uint16/uint32 (value − Base) or int64; float as float64; string as
// dictionary<uint8|uint16|uint32, string> or string; set as a list of either string
// form. A column's top array has the block's row count.
//
// # What opening checks
//
// OpenBlock checks, before any array is built: magic, version, header checksum, file
// length, every buffer inside the data area and 64-byte aligned, buffer lengths,
// null counts against their validity bitmaps, the offset and dictionary index rules
// above, and the time column. That is O(header) plus one pass over validity,
// offset and index buffers (nearly nothing of a numeric block, about a quarter of
// one of dictionary strings and sets), so a damaged file yields an
// error, never a panic or an out-of-bounds read in a later query. Values themselves
// are covered only by the file checksum, which VerifyBlock checks over the whole
// mapping.
//
// # Manifest layout, version 1
//
// dir/MANIFEST is one text line, then a JSON document:
//
//	REEF-MANIFEST version=1 length=<n> crc32c=<8 lowercase hex digits>\n
//	<n bytes: the Manifest as JSON, ending in "\n">
//
// length is the byte length of the JSON part and crc32c its Castagnoli checksum;
// nothing follows it, and the line must be exactly in this form. The JSON keys:
// version, generation, leaf_id, created_unix and blocks, a list of {file, size, rows,
// schema_hash (a decimal string, being 64-bit), crc32c, table, min_time, max_time}.
// Unknown keys are an error. A reader checks the line, the length, the checksum, the
// version, and every bound listed at validateManifest before it returns a manifest.
package shm
