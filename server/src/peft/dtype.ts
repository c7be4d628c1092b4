/**
 * Tensor dtypes and their float codecs (F32, F16, BF16), shared with the
 * client SDK through `@tributary/protocol` (its `adapter-format/dtype.ts`).
 */
export {
  DTYPE_BYTES,
  decodeFloats,
  encodeFloats,
  f16BitsToNumber,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  firstUnrepresentable,
  isTensorDType,
  type TensorDType,
} from "@tributary/protocol";
