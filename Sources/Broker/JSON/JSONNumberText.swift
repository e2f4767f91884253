/// Writes a double as JavaScript's `JSON.stringify` does (ECMA-262 `Number::toString`), so
/// that a number passes through the gateway with the text the original Node gateway gave it:
/// `100` rather than Swift's `100.0`, `1e-7` rather than `1e-07`, `10000000000000000` rather
/// than `1e+16`. Clients that tell integers from floats by their text (Python's `json`) see
/// the same type as before.
enum JSONNumberText {
    /// Appends the text of `value`, which must be finite (JSON has no NaN or infinity).
    static func append(_ value: Double, to output: inout [UInt8]) {
        if value == 0 {  // -0 too: JavaScript prints it as 0
            output.append(UInt8(ascii: "0"))
            return
        }
        // Whole numbers below 2^53 are their own shortest digits: written as integers.
        if value.magnitude < 9_007_199_254_740_992, value == value.rounded(.towardZero) {
            output.append(contentsOf: String(Int64(value)).utf8)
            return
        }
        if value < 0 { output.append(UInt8(ascii: "-")) }
        // Swift's description has the shortest digits that read back as the same double, as
        // JavaScript's do; only where the point goes and how the exponent looks differ.
        var text = value.magnitude.description
        text.withUTF8 { text in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: text.count) { buffer in
                let (count, n) = shortestDigits(of: text, into: buffer)
                write(UnsafeBufferPointer(rebasing: buffer[..<count]), pointPosition: n, to: &output)
            }
        }
    }

    /// `digits` × 10^(n − k): ECMA-262 `Number::toString` steps 6 to 10.
    private static func write(_ digits: UnsafeBufferPointer<UInt8>, pointPosition n: Int, to output: inout [UInt8]) {
        let k = digits.count
        if k <= n && n <= 21 {
            output.append(contentsOf: digits)
            output.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: n - k))
        } else if 0 < n && n <= 21 {
            output.append(contentsOf: digits[..<n])
            output.append(UInt8(ascii: "."))
            output.append(contentsOf: digits[n...])
        } else if -6 < n && n <= 0 {
            output.append(contentsOf: "0.".utf8)
            output.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: -n))
            output.append(contentsOf: digits)
        } else {
            output.append(digits[0])
            if k > 1 {
                output.append(UInt8(ascii: "."))
                output.append(contentsOf: digits[1...])
            }
            let exponent = n - 1
            output.append(UInt8(ascii: "e"))
            output.append(exponent < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            output.append(contentsOf: String(exponent.magnitude).utf8)
        }
    }

    /// Copies the significant digits of a positive finite double's shortest form (`123.45`,
    /// `1e-07`, `1.2345678901234567e+19`) into `digits`, without leading or trailing zeros;
    /// returns their count and the position `n` of the decimal point (value = 0.d1…dk × 10^n).
    private static func shortestDigits(
        of text: UnsafeBufferPointer<UInt8>, into digits: UnsafeMutableBufferPointer<UInt8>
    ) -> (count: Int, pointPosition: Int) {
        var end = text.count
        var exponent = 0
        if let e = text.firstIndex(of: UInt8(ascii: "e")) {
            end = e
            var index = e + 1
            let negative = text[index] == UInt8(ascii: "-")
            if text[index] == UInt8(ascii: "-") || text[index] == UInt8(ascii: "+") { index += 1 }
            while index < text.count {
                exponent = exponent * 10 + Int(text[index] - UInt8(ascii: "0"))
                index += 1
            }
            if negative { exponent = -exponent }
        }
        var count = 0
        var integerDigits = 0
        var seenPoint = false
        var leadingZeros = 0
        for byte in text[..<end] {
            if byte == UInt8(ascii: ".") {
                seenPoint = true
                continue
            }
            if count == 0 && byte == UInt8(ascii: "0") {
                leadingZeros += 1
            } else {
                digits[count] = byte
                count += 1
            }
            if !seenPoint { integerDigits += 1 }
        }
        while count > 0 && digits[count - 1] == UInt8(ascii: "0") { count -= 1 }
        return (count, integerDigits + exponent - leadingZeros)
    }
}
