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
        if value < 0 { output.append(UInt8(ascii: "-")) }
        // Swift's description has the shortest digits that read back as the same double, as
        // JavaScript's do; only where the point goes and how the exponent looks differ.
        let (digits, pointPosition) = shortestDigits(of: value.magnitude)
        let k = digits.count
        let n = pointPosition  // value = 0.d1d2…dk × 10^n
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

    /// The significant digits of a positive finite double (no leading or trailing zeros) and
    /// the position of the decimal point relative to them, from Swift's shortest form
    /// (`123.45`, `1e-07`, `1.2345678901234567e+19`).
    private static func shortestDigits(of value: Double) -> (digits: [UInt8], pointPosition: Int) {
        let text = Array(value.description.utf8)
        var mantissa = text[...]
        var exponent = 0
        if let e = text.firstIndex(of: UInt8(ascii: "e")) {
            mantissa = text[..<e]
            var sign = 1
            var index = e + 1
            if text[index] == UInt8(ascii: "-") { sign = -1 }
            if text[index] == UInt8(ascii: "-") || text[index] == UInt8(ascii: "+") { index += 1 }
            for byte in text[index...] { exponent = exponent * 10 + Int(byte - UInt8(ascii: "0")) }
            exponent *= sign
        }
        var digits: [UInt8] = []
        digits.reserveCapacity(mantissa.count)
        var integerDigits = 0
        var seenPoint = false
        for byte in mantissa {
            if byte == UInt8(ascii: ".") {
                seenPoint = true
            } else {
                digits.append(byte)
                if !seenPoint { integerDigits += 1 }
            }
        }
        var pointPosition = integerDigits + exponent
        let leadingZeros = digits.prefix { $0 == UInt8(ascii: "0") }.count
        digits.removeFirst(leadingZeros)
        pointPosition -= leadingZeros
        while digits.last == UInt8(ascii: "0") { digits.removeLast() }
        return (digits, pointPosition)
    }
}
